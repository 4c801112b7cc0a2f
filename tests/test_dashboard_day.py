"""The dashboard's "today" starts at midnight in the shop's zone (SHOP_TIME_ZONE), on the
page and in the live counters; without one, in the database server's TimeZone."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from admin.live import order_stats
from admin.live.hub import Batch, Broadcast, Hub
from admin.live.stats import StatsFeed
from admin.settings import Settings
from tests.conftest import LoggedIn
from tests.live_helpers import add_customer

# UTC+14 all year: its midnight is 10:00 UTC the day before, so its day and UTC's overlap
# by ten hours only, and a count in the wrong zone is wrong most of the day
SHOP_ZONE = "Pacific/Kiritimati"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, shop_time_zone=SHOP_ZONE)


async def orders_around_the_shop_midnight(conn: asyncpg.Connection) -> None:
    """Orders placed around the last midnight in SHOP_ZONE, the day's bounds worked out by
    Python's tz database from the server's clock: today's totals 1 and 2; yesterday's 4
    before this time of day and 1000 after it; 50,000 tomorrow."""
    customer = await add_customer(conn)
    now = (await conn.fetchval("SELECT now()")).astimezone(ZoneInfo(SHOP_ZONE))
    midnight = datetime.combine(now.date(), time(), now.tzinfo)
    since = now - midnight
    placed = [
        (midnight + timedelta(seconds=1), 1),
        (midnight + since / 2, 2),
        (midnight - timedelta(days=1) + since / 2, 4),
        (midnight - timedelta(seconds=1), 1000),
        (midnight + timedelta(days=1, seconds=1), 50_000),
    ]
    await conn.executemany(
        "INSERT INTO orders (user_id, total, created_at) VALUES ($1, $2, $3)",
        [(customer, total, at) for at, total in placed],
    )


async def test_today_starts_at_midnight_in_the_shop_time_zone(
    staff_client: LoggedIn, conn: asyncpg.Connection
):
    await orders_around_the_shop_midnight(conn)
    html = (await staff_client.get("/")).text
    assert f"from midnight, {SHOP_ZONE}</span>" in html
    assert re.search(r'data-counter="total">2<', html)
    assert re.search(r'data-counter="revenue">\$3.00<', html)
    compare = re.search(r'data-counter="revenue-yesterday">(.*?)</dd>', html)
    assert compare is not None and "$4.00 by this time yesterday" in compare.group(1)


async def test_live_counters_count_the_shop_day_too(
    settings: Settings, pool: asyncpg.Pool, conn: asyncpg.Connection
):
    assert settings.listen_database_url is not None
    hub = Hub(settings.listen_database_url)
    hub.start()
    stats = StatsFeed(hub, pool, min_interval=0, day_zone=settings.shop_time_zone)
    stats.start()
    try:
        assert await hub.wait_ready(10)
        client = hub.subscribe()
        await orders_around_the_shop_midnight(conn)
        frame = b""
        async with asyncio.timeout(10):
            while b"event: counters" not in frame:
                message = await client.queue.get()
                if isinstance(message, Batch):
                    frame = message.extra
                elif isinstance(message, Broadcast):
                    frame = message.frame
        counters = frame.decode()
        assert 'data-counter="total">2<' in counters
        assert "$4.00 by this time yesterday" in counters
    finally:
        await stats.stop()
        await hub.stop()


async def test_without_a_shop_zone_today_is_the_servers_and_an_unknown_name_falls_back(
    conn: asyncpg.Connection, caplog: pytest.LogCaptureFixture
):
    # SET LOCAL: a session setting would outlive the test on a pooler's shared connection
    async with conn.transaction():
        await conn.execute(f"SET LOCAL TimeZone = '{SHOP_ZONE}'")
        await orders_around_the_shop_midnight(conn)
        counters = await order_stats.today(conn)
        assert (counters.zone, counters.total, counters.revenue_yesterday) == (SHOP_ZONE, 2, 4)
        # a name Python's tz database may have and the server's lack: the server's zone and
        # a log line; the refused name must not abort the transaction around it
        counters = await order_stats.today(conn, "Nowhere/Atlantis")
        assert (counters.zone, counters.total) == (SHOP_ZONE, 2)
    assert "Nowhere/Atlantis" in caplog.text
