"""The live streams' queue: order, the bound, and a waiting reader woken by a put."""

from __future__ import annotations

import asyncio

import pytest

from admin.live.mailbox import Mailbox


async def test_items_come_out_in_order_and_the_bound_holds() -> None:
    box: Mailbox[int] = Mailbox(2)
    assert box.empty() and box.qsize() == 0
    box.put_nowait(1)
    box.put_nowait(2)
    with pytest.raises(asyncio.QueueFull):
        box.put_nowait(3)
    assert box.qsize() == 2
    assert await box.get() == 1
    assert box.get_nowait() == 2
    with pytest.raises(asyncio.QueueEmpty):
        box.get_nowait()


async def test_a_waiting_reader_gets_the_next_put() -> None:
    box: Mailbox[str] = Mailbox(4)
    reader = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert not reader.done()
    box.put_nowait("a")
    assert await asyncio.wait_for(reader, 1) == "a"
    # a reader cancelled while waiting leaves the box usable
    waiting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    box.put_nowait("b")
    assert await asyncio.wait_for(box.get(), 1) == "b"


async def test_one_reader_at_a_time() -> None:
    box: Mailbox[int] = Mailbox(1)
    first = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await box.get()
    box.put_nowait(7)
    assert await asyncio.wait_for(first, 1) == 7
