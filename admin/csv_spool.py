"""An upload received into a temporary file before any database work starts.

A client that trickles its upload then holds no pooled connection and no transaction (an
open import transaction has an xid, which holds back the live feed for everyone); COPY
reads the finished file at disk speed. The file is anonymous (the system deletes it when it
is closed), and memory stays at about one write batch whatever the file's size.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable
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


async def spool(
    header: bytes, rest: AsyncIterator[bytes], watch: Callable[[bytes], None] | None = None
) -> BinaryIO:
    """A temporary file holding `header` then `rest` (lone `\\.` records quoted), at offset 0.

    `watch` is given the file's bytes in order, each write batch as it is written, off the
    event loop (the direct import's screens run there while the next chunks arrive). The
    caller closes the file (which deletes it).
    """
    file = tempfile.TemporaryFile(prefix="csv-import-")
    try:
        guard = EndMarkerGuard()
        batch = bytearray(header)
        async for chunk in rest:
            batch += guard.feed(chunk)
            if len(batch) >= WRITE_BATCH_BYTES:
                await asyncio.to_thread(_write, file, bytes(batch), watch)
                batch.clear()
        batch += guard.finish()
        await asyncio.to_thread(_write, file, bytes(batch), watch)
        await asyncio.to_thread(file.flush)
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return file


def _write(file: BinaryIO, data: bytes, watch: Callable[[bytes], None] | None) -> None:
    file.write(data)
    if watch is not None:
        watch(data)
