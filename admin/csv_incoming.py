"""An upload that a direct import starts copying before all of it has arrived.

A file received whole before its COPY starts costs the upload's time plus the COPY's.
When the client sends fast, the direct path (csv_direct) instead starts once the first
part of the file is in (enough to read its format) and COPY reads the spool file as it
grows, so receiving and writing overlap, as they do for `psql \\copy`.

A client that then slows down must not keep the import's transaction open (its xid holds
back the live feed for everyone, see csv_spool): once COPY has waited for the upload for
STALL_SECONDS in all (one pause, or a trickle of short ones), the read fails with
UploadStalled, the transaction is rolled back, the connection given back, and the import
runs again once the whole file is in.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import BinaryIO

from admin.csv_spool import new_spool, spool_into

STALL_SECONDS = 1.0
READ_BLOCK = 256 << 10


class UploadStalled(Exception):
    """The upload stopped arriving while the import was waiting for it."""


class Incoming:
    """The spool file of an upload still being received (by a task of its own), readable
    as it grows. `on_received` runs once, when the whole file is in, for the first reader
    that sees it. Close it (cancels the receiving, deletes the file)."""

    def __init__(
        self,
        header: bytes,
        rest: AsyncIterator[bytes],
        watch: Callable[[bytes], None] | None,
        on_received: Callable[[], Awaitable[None]],
    ) -> None:
        self.file = new_spool()
        self.size = 0
        self._grown = asyncio.Event()
        self._on_received: Callable[[], Awaitable[None]] | None = on_received
        self._task = asyncio.create_task(spool_into(self.file, header, rest, watch, self._written))
        self._task.add_done_callback(lambda _: self._grown.set())

    def _written(self, size: int) -> None:
        self.size = size
        self._grown.set()

    @property
    def arriving(self) -> bool:
        return not self._task.done()

    async def _ended(self) -> None:
        """The receiving ended: its error, if it failed; else the file is whole."""
        await self._task
        if self._on_received is not None:
            on_received, self._on_received = self._on_received, None
            await on_received()

    async def _grow(self, stall_seconds: float | None) -> None:
        self._grown.clear()
        if stall_seconds is None:
            await self._grown.wait()
            return
        try:
            async with asyncio.timeout(stall_seconds):
                await self._grown.wait()
        except TimeoutError:
            raise UploadStalled from None

    async def head(self, size: int) -> bytes:
        """The file's first `size` bytes, once they are in (or all of it, once received)."""
        while self.size < size and self.arriving:
            await self._grow(None)
        if not self.arriving:
            await self._ended()
        return await asyncio.to_thread(os.pread, self.file.fileno(), size, 0)

    async def whole(self, stall_seconds: float | None = None) -> BinaryIO:
        """The whole file at offset 0; UploadStalled when it stops growing for
        `stall_seconds` on the way."""
        while self.arriving:
            await self._grow(stall_seconds)
        await self._ended()
        self.file.seek(0)
        return self.file

    async def follow(self, stall_seconds: float = STALL_SECONDS) -> AsyncIterator[bytes]:
        """The file's bytes from its start, as they are written; the receiving's error if
        it fails, UploadStalled once the reader has waited `stall_seconds` in all for it
        to grow (a trickle of short pauses adds up as one long one would)."""
        offset = 0
        descriptor = self.file.fileno()
        budget = stall_seconds
        while True:
            if offset < self.size:
                want = min(READ_BLOCK, self.size - offset)
                # from the page cache, on the event loop: a worker thread would keep a
                # malloc arena of its own for them (the server grew by 5 MB more)
                block = os.pread(descriptor, want, offset)
                offset += len(block)
                yield block
            elif self.arriving:
                if budget <= 0:
                    raise UploadStalled
                started = time.monotonic()
                await self._grow(budget)
                budget -= time.monotonic() - started
            else:
                await self._ended()
                if offset >= self.size:
                    return

    async def close(self) -> None:
        if self.arriving:
            self._task.cancel()
        await asyncio.wait([self._task])
        if not self._task.cancelled():
            self._task.exception()  # raised to a reader already, or of no interest now
        self.file.close()
