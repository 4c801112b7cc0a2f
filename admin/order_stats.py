"""Read-only aggregates over orders for the dashboard: today's counters, orders per minute."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg

from admin.events import STATUSES

CHART_MINUTES = 60


@dataclass(frozen=True)
class Counters:
    by_status: dict[str, int]
    revenue: Decimal

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True)
class MinuteCount:
    minute: datetime
    orders: int


async def today(conn: asyncpg.Connection) -> Counters:
    """Orders created today (server time zone) by current status; revenue excludes cancelled.

    Bounded above too: a created_at in the future (any writer may store one, up to
    infinity) is not today's."""
    rows = await conn.fetch(
        """
        SELECT status, count(*) AS orders,
               coalesce(sum(total) FILTER (WHERE status <> 'cancelled'), 0) AS revenue
        FROM orders
        WHERE created_at >= date_trunc('day', now())
          AND created_at < date_trunc('day', now()) + interval '1 day'
        GROUP BY status
        """
    )
    by_status = dict.fromkeys(STATUSES, 0)
    revenue = Decimal(0)
    for row in rows:
        by_status[row["status"]] = row["orders"]
        revenue += row["revenue"]
    return Counters(by_status=by_status, revenue=revenue)


async def per_minute(conn: asyncpg.Connection) -> list[MinuteCount]:
    """Orders created in each of the last CHART_MINUTES minutes, oldest first, zeros filled."""
    rows = await conn.fetch(
        """
        SELECT date_trunc('minute', now()) AS current_minute, m.minute, m.orders
        FROM (SELECT 1) AS one
        LEFT JOIN (
            SELECT date_trunc('minute', created_at) AS minute, count(*) AS orders
            FROM orders
            WHERE created_at >= date_trunc('minute', now()) - make_interval(mins => $1 - 1)
              AND created_at < date_trunc('minute', now()) + interval '1 minute'
            GROUP BY 1
        ) AS m ON true
        """,
        CHART_MINUTES,
    )
    current: datetime = rows[0]["current_minute"]
    counts = {row["minute"]: row["orders"] for row in rows if row["minute"] is not None}
    first = current - timedelta(minutes=CHART_MINUTES - 1)
    minutes = [first + timedelta(minutes=i) for i in range(CHART_MINUTES)]
    return [MinuteCount(minute=m, orders=counts.get(m, 0)) for m in minutes]
