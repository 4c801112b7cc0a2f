"""An upload that a direct import starts copying before all of it has arrived.

A file received whole before its COPY starts costs the upload's time plus the COPY's.
When the client sends fast, the direct path (csvio.direct) instead starts once the first
part of the file is in (enough to read its format) and COPY reads the spool file as it
grows, so receiving and writing overlap, as they do for `psql \\copy`.

A fast client is read no faster than COPY takes the file: while COPY follows the spool,
the receiving stays at most PACE_LEAD_BYTES ahead of it, as TCP holds `psql \\copy` back.
Read in one burst instead, the upload kept the event loop busy (receiving, screening,
hashing, writing) while it should have been feeding the COPY, whose backend waited for
data (ClientRead) a tenth of the time in those seconds. A COPY that stops taking the
file (it waits for a lock) sets the pace no longer once it has read nothing for
PACE_WAIT_SECONDS: a stuck COPY never holds the client up for longer than that.

A client that then slows down must not keep the import's transaction open (its xid holds
back the live feed for everyone, see csvio.spool): once COPY has waited for the upload for
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

from admin.csvio.spool import new_spool, spool_into

STALL_SECONDS = 1.0
READ_BLOCK = 256 << 10
# half a second of COPY at its usual speed: the follower does not run dry when the
# receiving misses a beat
PACE_LEAD_BYTES = 8 << 20
PACE_WAIT_SECONDS = 1.0


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
        watch: Callable[[bytes], Awaitable[None]] | None,
        on_received: Callable[[], Awaitable[None]],
    ) -> None:
        self.file = new_spool()
        self.size = 0
        self._grown = asyncio.Event()
        self._followed = 0  # how far the follower has read, while it sets the pace
        self._pacing = False
        self._read_more = asyncio.Event()
        self._on_received: Callable[[], Awaitable[None]] | None = on_received
        self._task = asyncio.create_task(
            spool_into(self.file, header, rest, watch, self._written, self._keep_pace)
        )
        self._task.add_done_callback(lambda _: self._grown.set())

    def _written(self, size: int) -> None:
        self.size = size
        self._grown.set()

    async def _keep_pace(self) -> None:
        """Wait, while a follower keeps reading, until it is within PACE_LEAD_BYTES of the
        end of what was received; a follower that reads nothing for PACE_WAIT_SECONDS sets
        the pace no longer."""
        while self._pacing and self.size - self._followed > PACE_LEAD_BYTES:
            self._read_more.clear()
            try:
                async with asyncio.timeout(PACE_WAIT_SECONDS):
                    await self._read_more.wait()
            except TimeoutError:
                self._pacing = False

    def _read_to(self, offset: int) -> None:
        self._followed = offset
        self._read_more.set()

    def _unfollowed(self) -> None:
        self._pacing = False
        self._read_more.set()

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
        to grow (a trickle of short pauses adds up as one long one would). The receiving
        keeps pace with the reader until it is closed (see the module's note)."""
        offset = 0
        descriptor = self.file.fileno()
        budget = stall_seconds
        self._pacing = True
        try:
            while True:
                if offset < self.size:
                    want = min(READ_BLOCK, self.size - offset)
                    # from the page cache, on the event loop: a worker thread would keep a
                    # malloc arena of its own for them (the server grew by 5 MB more)
                    block = os.pread(descriptor, want, offset)
                    offset += len(block)
                    self._read_to(offset)
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
        finally:
            self._unfollowed()

    async def close(self) -> None:
        if self.arriving:
            self._task.cancel()
        await asyncio.wait([self._task])
        if not self._task.cancelled():
            self._task.exception()  # raised to a reader already, or of no interest now
        self.file.close()
