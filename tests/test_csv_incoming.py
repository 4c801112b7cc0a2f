"""An upload followed by its COPY as it arrives: the receiving keeps pace with the reader
(never more than the lead ahead of it), and a reader that stops or goes away sets the pace
no longer, so the client is not held up."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from admin.app import GIL_SWITCH_SECONDS
from admin.csvio import incoming as incoming_module
from admin.csvio.incoming import READ_BLOCK, Incoming
from admin.csvio.spool import WRITE_BATCH_BYTES

LEAD = 2 << 20
FILE = bytes(range(256)) * (12 << 12)  # 12 MB: six times the lead
HEADER = b"a,b\n"


@pytest.fixture(autouse=True)
def small_lead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(incoming_module, "PACE_LEAD_BYTES", LEAD)


class FastClient:
    """A client that sends as fast as it is read: a body in 64 KB chunks."""

    def __init__(self) -> None:
        self.sent = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(FILE), 64 << 10):
            chunk = FILE[start : start + (64 << 10)]
            self.sent += len(chunk)
            yield chunk
            await asyncio.sleep(0)


async def _no_callback() -> None:
    return None


def _incoming(client: FastClient) -> Incoming:
    return Incoming(HEADER, client.chunks(), None, _no_callback)


@contextlib.asynccontextmanager
async def _read_once(
    client: FastClient,
) -> AsyncIterator[tuple[Incoming, AsyncGenerator[bytes, None], bytes]]:
    """An upload from `client` whose reader has read its first block, and then stops."""
    incoming = _incoming(client)
    blocks = incoming.follow(stall_seconds=30)
    try:
        yield incoming, blocks, await anext(blocks)
    finally:
        await blocks.aclose()
        await incoming.close()


async def test_a_reader_keeps_the_receiving_within_the_lead_and_reads_every_byte() -> None:
    client = FastClient()
    incoming = _incoming(client)
    read = bytearray()
    widest = 0
    try:
        async for block in incoming.follow(stall_seconds=30):
            read += block
            widest = max(widest, client.sent + len(HEADER) - len(read))
            await asyncio.sleep(0.002)  # a COPY takes its time over each block
    finally:
        await incoming.close()
    assert hashlib.sha256(read).digest() == hashlib.sha256(HEADER + FILE).digest()
    # ahead by the lead, plus the write batch and the read block on the way
    assert widest <= LEAD + WRITE_BATCH_BYTES + READ_BLOCK + (64 << 10), widest
    assert widest >= LEAD, widest  # it did run ahead, up to the lead


async def test_without_a_reader_the_upload_is_received_at_once() -> None:
    client = FastClient()
    incoming = _incoming(client)
    try:
        async with asyncio.timeout(10):
            file = await incoming.whole()
        assert file.read() == HEADER + FILE
    finally:
        await incoming.close()


async def test_a_reader_that_stops_reading_sets_the_pace_no_longer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A COPY waiting for a lock: after PACE_WAIT_SECONDS without a read, the rest of the
    upload is received at once."""
    monkeypatch.setattr(incoming_module, "PACE_WAIT_SECONDS", 0.3)
    client = FastClient()
    async with _read_once(client) as (incoming, blocks, first):
        async with asyncio.timeout(10):
            while incoming.arriving:
                await asyncio.sleep(0.01)
        assert client.sent == len(FILE)
        read = bytearray(first)
        async for block in blocks:  # and the reader still gets all of it, from the spool
            read += block
        assert read == HEADER + FILE


async def test_a_reader_that_is_closed_releases_the_receiving_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A COPY that failed (the file is staged instead): the upload is received without
    waiting for a reader that is gone."""
    monkeypatch.setattr(incoming_module, "PACE_WAIT_SECONDS", 60)
    client = FastClient()
    async with _read_once(client) as (incoming, blocks, first):
        await asyncio.sleep(0.5)  # far longer than the whole file takes to arrive
        # held back: no further than the lead (and a write batch) past what was read
        assert client.sent <= len(first) + LEAD + WRITE_BATCH_BYTES + (128 << 10)
        await blocks.aclose()
        async with asyncio.timeout(10):
            file = await incoming.whole()
        assert client.sent == len(FILE)
        assert file.read() == HEADER + FILE


def test_the_app_lets_the_event_loop_take_the_gil_back_promptly(app) -> None:  # type: ignore[no-untyped-def]
    # an import's screens hold the GIL in a worker thread while the loop feeds the COPY
    assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_SECONDS)
    assert GIL_SWITCH_SECONDS <= 0.001
