"""Read-only aggregates over orders for the dashboard: today's counters and best sellers, and
orders over time for the chart (last hour, day or week)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg

from admin.live.events import STATUSES

log = logging.getLogger("admin.live.order_stats")

TOP = 5


@dataclass(frozen=True)
class Seller:
    """A product or category among today's best sellers."""

    id: int
    name: str
    quantity: int
    revenue: Decimal


@dataclass(frozen=True)
class Counters:
    by_status: dict[str, int]
    revenue: Decimal
    # revenue from the start of yesterday to this time yesterday
    revenue_yesterday: Decimal = Decimal(0)
    top_products: list[Seller] = field(default_factory=list)
    top_categories: list[Seller] = field(default_factory=list)
    zone: str = "UTC"  # where "today" starts at midnight

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True)
class Range:
    """A chart's window: `buckets` bars of `minutes` each, the newest ending now."""

    name: str
    label: str
    buckets: int
    minutes: int


RANGES = {
    r.name: r
    for r in (
        Range("hour", "last hour", 60, 1),
        Range("day", "last 24 hours", 24, 60),
        Range("week", "last 7 days", 28, 360),
    )
}
HOUR = RANGES["hour"]
CHART_MINUTES = HOUR.buckets


@dataclass(frozen=True)
class MinuteCount:
    """Orders created in the bucket starting at `minute`."""

    minute: datetime
    orders: int


# The day's bounds in the shop's zone (SHOP_TIME_ZONE), else in the database server's
# TimeZone: local midnight today and tomorrow, yesterday's, and this local time yesterday.
# Local times taken back into the zone, so that a day of 23 or 25 hours is one day.
_DAY = """
SELECT z AS zone,
       date_trunc('day', local) AT TIME ZONE z AS start,
       (date_trunc('day', local) + interval '1 day') AT TIME ZONE z AS stop,
       (date_trunc('day', local) - interval '1 day') AT TIME ZONE z AS yesterday,
       (local - interval '1 day') AT TIME ZONE z AS yesterday_now
FROM (SELECT z, now() AT TIME ZONE z AS local
      FROM (SELECT coalesce($1::text, current_setting('TimeZone')) AS z) AS named) AS here
"""
# bounded above too: a created_at in the future (any writer may store one, up to infinity)
# is not today's
_TODAY = """
SELECT status, count(*) AS orders,
       coalesce(sum(total) FILTER (WHERE status <> 'cancelled'), 0) AS revenue
FROM orders
WHERE created_at >= $1 AND created_at < $2
GROUP BY status
"""
_YESTERDAY_SO_FAR = """
SELECT coalesce(sum(total), 0) FROM orders
WHERE created_at >= $1 AND created_at < $2 AND status <> 'cancelled'
"""
# best sellers by revenue of today's order lines (cancelled orders left out)
_TOP = """
WITH lines AS (
    SELECT i.product_id, i.quantity, i.quantity * i.unit_price AS revenue
    FROM orders o JOIN order_items i ON i.order_id = o.id
    WHERE o.created_at >= $2 AND o.created_at < $3
      AND o.status <> 'cancelled'
)
(SELECT 'product' AS kind, p.id, p.name, sum(l.quantity) AS quantity, sum(l.revenue) AS revenue
 FROM lines l JOIN products p ON p.id = l.product_id
 GROUP BY p.id, p.name ORDER BY revenue DESC, p.id LIMIT $1)
UNION ALL
(SELECT 'category', c.id, c.name, sum(l.quantity), sum(l.revenue)
 FROM lines l JOIN products p ON p.id = l.product_id JOIN categories c ON c.id = p.category_id
 GROUP BY c.id, c.name ORDER BY 5 DESC, c.id LIMIT $1)
"""


async def day_bounds(conn: asyncpg.Connection, zone: str | None) -> asyncpg.Record:
    """Today's bounds in `zone` (None: the server's TimeZone). A name the server's tz
    database lacks (older than Python's) falls back to the server's zone, with a log line;
    the zone returned is the one used."""
    if zone is not None:
        try:
            if not conn.is_in_transaction():
                return await conn.fetchrow(_DAY, zone)
            async with conn.transaction():  # a savepoint: the fallback runs after a refusal
                return await conn.fetchrow(_DAY, zone)
        except asyncpg.InvalidParameterValueError as exc:
            log.warning("SHOP_TIME_ZONE %r: %s; today counts in the server's zone", zone, exc)
    return await conn.fetchrow(_DAY, None)


async def today(conn: asyncpg.Connection, zone: str | None = None) -> Counters:
    """Orders created today (from midnight in `zone`, else in the server's TimeZone) by
    current status; revenue excludes cancelled orders."""
    day = await day_bounds(conn, zone)
    rows = await conn.fetch(_TODAY, day["start"], day["stop"])
    by_status = dict.fromkeys(STATUSES, 0)
    revenue = Decimal(0)
    for row in rows:
        by_status[row["status"]] = row["orders"]
        revenue += row["revenue"]
    yesterday = await conn.fetchval(_YESTERDAY_SO_FAR, day["yesterday"], day["yesterday_now"])
    products: list[Seller] = []
    categories: list[Seller] = []
    for row in await conn.fetch(_TOP, TOP, day["start"], day["stop"]):
        seller = Seller(row["id"], row["name"], row["quantity"], row["revenue"])
        (products if row["kind"] == "product" else categories).append(seller)
    return Counters(
        by_status=by_status,
        revenue=revenue,
        revenue_yesterday=yesterday,
        top_products=products,
        top_categories=categories,
        zone=day["zone"],
    )


async def per_bucket(conn: asyncpg.Connection, window: Range = HOUR) -> list[MinuteCount]:
    """Orders created in each bucket of `window`, oldest first, zeros filled. Buckets are
    aligned to UTC (a day's hours, a week's quarter days)."""
    rows = await conn.fetch(
        """
        WITH now_bucket AS (
            SELECT date_bin(make_interval(mins => $1), now(), timestamptz '2000-01-01 00:00Z') AS b
        )
        SELECT n.b AS current_bucket, m.bucket, m.orders
        FROM now_bucket n
        LEFT JOIN (
            SELECT date_bin(make_interval(mins => $1), created_at, timestamptz '2000-01-01 00:00Z')
                   AS bucket, count(*) AS orders
            FROM orders, now_bucket n
            WHERE created_at >= n.b - make_interval(mins => $1 * ($2 - 1))
              AND created_at < n.b + make_interval(mins => $1)
            GROUP BY 1
        ) AS m ON true
        """,
        window.minutes,
        window.buckets,
    )
    current: datetime = rows[0]["current_bucket"]
    counts = {row["bucket"]: row["orders"] for row in rows if row["bucket"] is not None}
    step = timedelta(minutes=window.minutes)
    first = current - step * (window.buckets - 1)
    starts = [first + step * i for i in range(window.buckets)]
    return [MinuteCount(minute=m, orders=counts.get(m, 0)) for m in starts]


async def per_minute(conn: asyncpg.Connection) -> list[MinuteCount]:
    """Orders created in each of the last CHART_MINUTES minutes, oldest first."""
    return await per_bucket(conn, HOUR)
