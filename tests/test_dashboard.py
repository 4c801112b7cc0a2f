"""GET / renders the current state (no JavaScript needed); the hub drops slow clients."""

from __future__ import annotations

import asyncio
import re

import asyncpg

from admin.live.hub import HEARTBEAT, Batch, Broadcast, Closed, Hub
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


async def test_revenue_today_is_compared_with_the_same_time_yesterday(
    staff_client: LoggedIn, conn: asyncpg.Connection
):
    customer = await add_customer(conn)
    await insert_orders(conn, customer, 3)  # today: 1 + 2 + 3
    yesterday = [
        # halfway between yesterday's start and this time yesterday: counted
        ("date_trunc('day', now()) - interval '1 day'"
         " + (now() - date_trunc('day', now())) / 2", 4),
        # after this time yesterday: not yet comparable
        ("now() - interval '1 day' + (date_trunc('day', now()) - (now() - interval '1 day')) / 2",
         1000),
    ]  # fmt: skip
    for at, total in yesterday:
        await conn.execute(
            f"INSERT INTO orders (user_id, total, created_at) VALUES ($1, $2, {at})",
            customer,
            total,
        )
    html = (await staff_client.get("/")).text
    assert re.search(r'data-counter="revenue">\$6.00<', html)
    compare = re.search(r'data-counter="revenue-yesterday">(.*?)</dd>', html)
    assert compare is not None
    assert "+50%" in compare.group(1) and "$4.00 by this time yesterday" in compare.group(1)


async def test_top_products_and_categories_today_come_from_order_lines(
    staff_client: LoggedIn, conn: asyncpg.Connection
):
    customer = await add_customer(conn)
    tea = await conn.fetchval("INSERT INTO categories (name) VALUES ('Tea') RETURNING id")
    cups = await conn.fetchval("INSERT INTO categories (name) VALUES ('Cups') RETURNING id")
    products = {}
    for sku, name, category in [("T-1", "Green", tea), ("T-2", "Black", tea), ("C-1", "Mug", cups)]:
        products[name] = await conn.fetchval(
            "INSERT INTO products (sku, name, price, category_id) VALUES ($1, $2, 1, $3)"
            " RETURNING id",
            sku,
            name,
            category,
        )
    lines = [("Green", 2, 3), ("Mug", 1, 10), ("Black", 1, 4), ("Green", 1, 3)]
    order = await conn.fetchval(
        "INSERT INTO orders (user_id, total) VALUES ($1, 23) RETURNING id", customer
    )
    for name, quantity, price in lines:
        await conn.execute(
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price)"
            " VALUES ($1, $2, $3, $4)",
            order,
            products[name],
            quantity,
            price,
        )
    # a cancelled order's lines are no sale
    gone = await conn.fetchval(
        "INSERT INTO orders (user_id, total, status) VALUES ($1, 500, 'cancelled') RETURNING id",
        customer,
    )
    await conn.execute(
        "INSERT INTO order_items (order_id, product_id, quantity, unit_price)"
        " VALUES ($1, $2, 50, 10)",
        gone,
        products["Black"],
    )
    html = (await staff_client.get("/")).text
    top = re.search(r'data-top="products".*?</section>', html, re.S)
    assert top is not None
    names = re.findall(r'<a href="/products/\d+">(\w+)</a>', top.group(0))
    assert names == ["Mug", "Green", "Black"]  # $10, $9, $4
    assert "3 sold · $9.00" in top.group(0)
    categories = re.search(r'data-top="categories".*?</section>', html, re.S)
    assert categories is not None
    assert re.findall(r'<a href="/categories/\d+">(\w+)</a>', categories.group(0)) == [
        "Tea",
        "Cups",
    ]
    assert "4 sold · $13.00" in categories.group(0)


async def test_chart_ranges_hour_day_week_with_labelled_axes(
    staff_client: LoggedIn, conn: asyncpg.Connection
):
    customer = await add_customer(conn)
    await insert_orders(conn, customer, 2)
    await conn.execute(
        "INSERT INTO orders (user_id, total, created_at)"
        " VALUES ($1, 1, now() - interval '3 hours'), ($1, 1, now() - interval '3 days'),"
        " ($1, 1, now() - interval '9 days')",
        customer,
    )
    for name, bars, total in [("hour", 60, 2), ("day", 24, 3), ("week", 28, 4)]:
        response = await staff_client.get(f"/live/chart?range={name}")
        assert response.status_code == 200
        svg = response.text
        assert svg.count('<rect class="bar"') == bars, name
        assert sum(int(n) for n in re.findall(r'data-orders="(\d+)"', svg)) == total, name
        assert "Orders per minute</text>" in svg and "Time (UTC)</text>" in svg
        assert len(re.findall(r'<text class="tick"', svg)) >= 5  # both axes have values
        assert re.search(r'data-label="[^"]*UTC: \d+ orders?', svg)
    page = (await staff_client.get("/?range=week")).text
    assert page.count('<rect class="bar"') == 28
    assert re.search(r'data-chart-range="week"[^>]*aria-current="true"', page)
    assert (await staff_client.get("/live/chart?range=year")).status_code == 400
    assert (await staff_client.get("/?range=year")).status_code == 400


def test_the_change_against_yesterday():
    from decimal import Decimal

    from admin.display.money import change

    assert change(Decimal(6), Decimal(4)) == "+50%"
    assert change(Decimal(3), Decimal(4)) == "-25%"
    assert change(Decimal(3), Decimal(0)) is None
