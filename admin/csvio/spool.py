"""An upload received into a temporary file before any database work starts.

A client that trickles its upload then holds no pooled connection and no transaction (an
open import transaction has an xid, which holds back the live feed for everyone); COPY
reads the finished file at disk speed. (A direct import of a file arriving fast reads the
file while it is written, and gives its transaction up when the upload pauses: see
csvio.incoming.) The file is anonymous (the system deletes it when it
is closed), and memory stays at about one write batch whatever the file's size.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import BinaryIO

# chunks are gathered into writes of about this size, each done off the event loop
WRITE_BATCH_BYTES = 1 << 20

_LINE_ENDS = (b"\n", b"\r")


class EndMarkerGuard:
    """Quotes every record that holds only `\\.`, so that COPY reads it as data.

    Before PostgreSQL 18, COPY ends its input at a line holding only `\\.` (outside quoted
    fields) and silently drops the rest of the file; PostgreSQL 18 reads it as a row. Quoted,
    `"\\."` is a plain value on every version, so a file means the same thing on all of them.
    A `\\.` line inside a quoted multi-line field is data already and is left as it is.
    Bytes are fed in chunks of any size; quotes are counted with bytes.count (C speed), and
    only the rare `\\.` candidates are looked at one by one.
    """

    def __init__(self) -> None:
        self._in_quotes = False
        self._previous = b"\n"  # the data starts right after the header's line end
        self._carry = b""  # the end of the last chunk, when the next one decides about it

    def feed(self, chunk: bytes) -> bytes:
        return self._rewrite(self._carry + chunk, final=False)

    def finish(self) -> bytes:
        return self._rewrite(self._carry, final=True)

    def _rewrite(self, data: bytes, *, final: bool) -> bytes:
        """`data` rewritten up to where the next chunk may still matter; the rest is carried."""
        pieces: list[bytes] = []
        copied = counted = 0
        end = len(data)
        in_quotes = self._in_quotes
        found = data.find(b"\\.")
        while found >= 0:
            if not final and found + 3 > len(data):
                end = found  # what follows it is still to come
                break
            in_quotes ^= data.count(b'"', counted, found) % 2 == 1
            counted = found
            before = data[found - 1 : found] if found else self._previous
            after = data[found + 2 : found + 3]  # empty only at the end of the file
            if not in_quotes and before in _LINE_ENDS and after in (*_LINE_ENDS, b""):
                pieces += (data[copied:found], b'"\\."')
                copied = found + 2
            found = data.find(b"\\.", found + 2)
        else:
            if not final and data.endswith(b"\\"):
                end = len(data) - 1  # may start a \. with the next chunk's first byte
        self._in_quotes = in_quotes ^ (data.count(b'"', counted, end) % 2 == 1)
        self._carry = data[end:]
        if end:
            self._previous = data[end - 1 : end]
        pieces.append(data[copied:end])
        return b"".join(pieces)


async def read_blocks(file: BinaryIO, block_size: int) -> AsyncIterator[bytes]:
    """A whole spool file's blocks from its start, read on the event loop: it was written a
    moment ago and is in the page cache, and blocks read in worker threads would each keep
    a malloc arena of their own."""
    file.flush()
    descriptor, offset = file.fileno(), 0
    while block := os.pread(descriptor, block_size, offset):
        offset += len(block)
        yield block


def new_spool() -> BinaryIO:
    return tempfile.TemporaryFile(prefix="csv-import-")


async def spool_into(
    file: BinaryIO,
    header: bytes,
    rest: AsyncIterator[bytes],
    watch: Callable[[bytes], Awaitable[None]] | None = None,
    written: Callable[[int], None] | None = None,
    pace: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Write `header` then `rest` to `file`; `watch` is given each write batch before it is
    written, `written` told the size on disk (flushed, readable through the file's
    descriptor) after each batch, and `pace` awaited before more of `rest` is read."""
    guard = EndMarkerGuard()
    batch = bytearray(header)
    size = 0

    async def write() -> None:
        nonlocal size
        data = bytes(batch)
        batch.clear()
        if watch is not None:
            await watch(data)
        await asyncio.to_thread(_write, file, data)
        size += len(data)
        if written is not None:
            written(size)
        if pace is not None:
            await pace()

    async for chunk in rest:
        batch += guard.feed(chunk)
        if len(batch) >= WRITE_BATCH_BYTES:
            await write()
    batch += guard.finish()
    await write()


def _write(file: BinaryIO, data: bytes) -> None:
    file.write(data)
    file.flush()
