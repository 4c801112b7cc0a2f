"""GET / renders the current state (no JavaScript needed); the hub drops slow clients."""

from __future__ import annotations

import asyncio
import re

import asyncpg

from admin.hub import HEARTBEAT, Batch, Broadcast, Closed, Hub
from tests.conftest import LoggedIn
from tests.live_helpers import add_customer, event_ids, insert_orders


async def test_dashboard_shows_feed_counters_chart_and_resume_point(
    staff_client: LoggedIn, conn: asyncpg.Connection
):
    customer = await add_customer(conn)
    await insert_orders(conn, customer, 3)
    await conn.execute("UPDATE orders SET status = 'cancelled' WHERE total = 3")
    page = await staff_client.get("/")
    assert page.status_code == 200
    html = page.text
    ids = await event_ids(conn)
    shown = [int(i) for i in re.findall(r'data-event-id="(\d+)"', html)]
    assert shown == sorted(ids, reverse=True)  # newest first
    assert 'href="/orders/1"' in html
    assert f'sse-connect="/events?after={ids[-1]}"' in html
    assert re.search(r'data-counter="total">3<', html)
    assert re.search(r'data-counter="cancelled">1<', html)
    assert re.search(r'data-counter="revenue">\$3.00<', html)  # 1 + 2, the cancelled 3 excluded
    assert html.count('<rect class="bar"') == 60
    assert ' style="' not in html and "<script>" not in html


async def test_dashboard_feed_is_capped_at_fifty(staff_client: LoggedIn, conn: asyncpg.Connection):
    customer = await add_customer(conn)
    await insert_orders(conn, customer, 60)
    html = (await staff_client.get("/")).text
    shown = [int(i) for i in re.findall(r'data-event-id="(\d+)"', html)]
    assert shown == list(range(60, 10, -1))


async def test_status_filter_and_its_errors(staff_client: LoggedIn, conn: asyncpg.Connection):
    customer = await add_customer(conn)
    await insert_orders(conn, customer, 2)
    await conn.execute("UPDATE orders SET status = 'paid' WHERE total = 1")
    html = (await staff_client.get("/?status=paid")).text
    assert re.findall(r'data-status="(\w+)"', html) == ["paid"]
    assert "status=paid" in html
    bad = await staff_client.get("/?status=lost")
    assert bad.status_code == 400


async def test_dashboard_needs_a_login(client):  # type: ignore[no-untyped-def]
    response = await client.get("/")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_slow_subscriber_is_dropped_and_others_keep_receiving(database_url: str):
    hub = Hub(database_url, queue_size=2)
    hub.start()
    try:
        assert await hub.wait_ready(10)
        slow, fast = hub.subscribe(), hub.subscribe()
        conn = await asyncpg.connect(database_url)
        customer = await add_customer(conn)
        received: list[int] = []
        for _ in range(5):
            await insert_orders(conn, customer, 1)
            async with asyncio.timeout(10):
                message = await fast.queue.get()
            assert isinstance(message, Batch)
            received += [e.id for e in message.events]
        assert received == await event_ids(conn)
        assert slow.closed == "too slow"
        leftover = slow.queue.get_nowait()
        assert isinstance(leftover, Closed) and slow.queue.empty()
        assert hub.client_count == 1
        await conn.close()
    finally:
        await hub.stop()
    assert fast.closed == "shutdown"


async def test_heartbeat_reaches_clients_and_a_send_stuck_for_a_beat_is_cut_off(
    database_url: str,
):
    hub = Hub(database_url, heartbeat_interval=0.2)
    hub.start()
    try:
        assert await hub.wait_ready(10)
        reading, stuck = hub.subscribe(), hub.subscribe()
        never = asyncio.get_running_loop().create_future()

        async def blocked_send() -> None:
            # what a send to a client that stopped reading looks like: it never returns
            stuck.writer = asyncio.current_task()
            stuck.sending = True
            await never

        writer = asyncio.create_task(blocked_send())
        async with asyncio.timeout(10):
            beat = await reading.queue.get()
            assert isinstance(beat, Broadcast) and beat.frame == HEARTBEAT
            await asyncio.wait([writer])
        assert writer.cancelled()
        assert stuck.closed == "too slow"
        assert reading.closed is None and hub.client_count == 1
    finally:
        await hub.stop()


async def test_frame_rides_with_the_next_release_or_goes_alone(database_url: str):
    hub = Hub(database_url)
    hub.start()
    try:
        assert await hub.wait_ready(10)
        client = hub.subscribe()
        conn = await asyncpg.connect(database_url)
        customer = await add_customer(conn)
        hub.send_with_next_release(b"event: counters\ndata: old\n\n", wait=30)
        hub.send_with_next_release(b"event: counters\ndata: new\n\n", wait=30)
        await insert_orders(conn, customer, 1)
        async with asyncio.timeout(10):
            batch = await client.queue.get()
        assert isinstance(batch, Batch)
        assert [e.id for e in batch.events] == await event_ids(conn)
        assert batch.extra == b"event: counters\ndata: new\n\n"
        hub.send_with_next_release(b"event: counters\ndata: alone\n\n", wait=0.05)
        async with asyncio.timeout(10):
            alone = await client.queue.get()
        assert isinstance(alone, Broadcast) and alone.frame == b"event: counters\ndata: alone\n\n"
        assert client.queue.empty()
        await conn.close()
    finally:
        await hub.stop()
