"""The check beside a direct import's COPY reads the same bytes, never ahead of the COPY,
and stops with it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from admin.csvio.rule_check import CopyAbandoned, ReadMark, RulesBroken

DATA = bytes(range(256)) * 4096  # 1 MB
PIECE = 100_000


async def _pieces() -> AsyncIterator[bytes]:
    for start in range(0, len(DATA), PIECE):
        yield DATA[start : start + PIECE]


async def test_the_check_reads_what_the_copy_read_and_no_further(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    path.write_bytes(DATA)
    mark = ReadMark()
    trailed = bytearray()

    async def check(descriptor: int) -> None:
        async for block in mark.trail(descriptor):
            trailed.extend(block)
            assert len(trailed) <= mark.offset

    with open(path, "rb") as file:
        checking = asyncio.create_task(check(file.fileno()))
        async for _ in mark.lead(_pieces()):
            await asyncio.sleep(0)
        await checking
    assert bytes(trailed) == DATA


async def test_the_check_stops_when_the_copy_is_abandoned(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    path.write_bytes(DATA)
    mark = ReadMark()
    with open(path, "rb") as file:

        async def check() -> None:
            async for _ in mark.trail(file.fileno()):
                pass

        checking = asyncio.create_task(check())
        async for _ in mark.lead(_pieces()):
            break  # the COPY failed after one block
        mark.abandon()
        with pytest.raises(CopyAbandoned):
            await asyncio.wait_for(checking, 5)


async def test_a_failed_check_ends_the_copy_at_its_next_block() -> None:
    mark = ReadMark()

    async def failing() -> None:
        raise RuntimeError("the check's connection broke")

    check = asyncio.create_task(failing())
    check.add_done_callback(mark.ended_check)
    read = 0
    with pytest.raises(RulesBroken):
        async for block in mark.lead(_pieces()):
            read += len(block)
            await asyncio.sleep(0)  # the check fails meanwhile
    assert 0 < read < len(DATA)
    with pytest.raises(RuntimeError):
        await check


async def test_a_file_shorter_than_the_copy_read_stops_the_check(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    path.write_bytes(DATA[:PIECE])
    mark = ReadMark()
    mark.offset, mark.ended = 2 * PIECE, True
    with open(path, "rb") as file:
        with pytest.raises(CopyAbandoned):
            async with asyncio.timeout(5):
                async for _ in mark.trail(file.fileno()):
                    pass
