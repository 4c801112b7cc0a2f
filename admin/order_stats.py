"""Read-only aggregates over orders for the dashboard: today's counters and best sellers, and
orders over time for the chart (last hour, day or week)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg

from admin.live.events import STATUSES

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


# "today" and "yesterday" in the server's time zone; bounded above too: a created_at in the
# future (any writer may store one, up to infinity) is not today's
_TODAY = """
SELECT status, count(*) AS orders,
       coalesce(sum(total) FILTER (WHERE status <> 'cancelled'), 0) AS revenue
FROM orders
WHERE created_at >= date_trunc('day', now())
  AND created_at < date_trunc('day', now()) + interval '1 day'
GROUP BY status
"""
_YESTERDAY_SO_FAR = """
SELECT coalesce(sum(total), 0) FROM orders
WHERE created_at >= date_trunc('day', now()) - interval '1 day'
  AND created_at < now() - interval '1 day'
  AND status <> 'cancelled'
"""
# best sellers by revenue of today's order lines (cancelled orders left out)
_TOP = """
WITH lines AS (
    SELECT i.product_id, i.quantity, i.quantity * i.unit_price AS revenue
    FROM orders o JOIN order_items i ON i.order_id = o.id
    WHERE o.created_at >= date_trunc('day', now())
      AND o.created_at < date_trunc('day', now()) + interval '1 day'
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


async def today(conn: asyncpg.Connection) -> Counters:
    """Orders created today by current status; revenue excludes cancelled orders."""
    rows = await conn.fetch(_TODAY)
    by_status = dict.fromkeys(STATUSES, 0)
    revenue = Decimal(0)
    for row in rows:
        by_status[row["status"]] = row["orders"]
        revenue += row["revenue"]
    yesterday = await conn.fetchval(_YESTERDAY_SO_FAR)
    products: list[Seller] = []
    categories: list[Seller] = []
    for row in await conn.fetch(_TOP, TOP):
        seller = Seller(row["id"], row["name"], row["quantity"], row["revenue"])
        (products if row["kind"] == "product" else categories).append(seller)
    return Counters(
        by_status=by_status,
        revenue=revenue,
        revenue_yesterday=yesterday,
        top_products=products,
        top_categories=categories,
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
