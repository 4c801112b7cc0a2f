"""order_events SQL: the release horizon the live hub polls, replays and the recent feed."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

import asyncpg

STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")

_COLUMNS = "e.id, e.order_id, e.kind, e.payload, e.created_at"


@dataclass(eq=False)
class OrderEvent:
    """One row of order_events; shared by every client of a process, so never mutated
    except for `encoded`, a cache of its rendered SSE frame."""

    id: int
    order_id: int
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    encoded: bytes | None = field(default=None, repr=False)

    @property
    def status(self) -> str | None:
        value = self.payload.get("status")
        return value if isinstance(value, str) else None

    @property
    def old_status(self) -> str | None:
        value = self.payload.get("old_status")
        return value if isinstance(value, str) else None

    @property
    def total(self) -> Decimal | None:
        value = self.payload.get("total")
        if value is None or isinstance(value, bool | dict | list):
            return None
        try:  # any writer may put anything here; "NaN" is what jsonb makes of a NaN total
            return Decimal(str(value))
        except InvalidOperation:
            return None


def _event(row: asyncpg.Record) -> OrderEvent:
    payload = row["payload"]
    if isinstance(payload, str):  # the hub's own connection has no jsonb codec
        payload = json.loads(payload)
    return OrderEvent(
        id=row["id"],
        order_id=row["order_id"],
        kind=row["kind"],
        payload=payload if isinstance(payload, dict) else {},
        created_at=row["created_at"],
    )


async def last_allocated_id(conn: asyncpg.Connection, table: str = "order_events") -> int:
    """The highest id the sequence has handed out, committed or not (0 when none yet)."""
    value = await conn.fetchval(
        "SELECT pg_sequence_last_value(pg_get_serial_sequence($1, 'id')::regclass)", table
    )
    return int(value or 0)


@dataclass(frozen=True)
class Poll:
    """What one snapshot showed: the xid below which this database runs no transaction
    (`xmin`: pairs with a larger xid stay pending), the settled horizon and the events up to it,
    plus the xid this poll took (when asked to) to bound an allocated id read before it."""

    xmin: int
    horizon: int
    events: list[Any]
    xid: int | None


# One statement, so the snapshot that decides the horizon is the one that reads the events.
# A pending pair (allocated, xid) is settled when no transaction of this database with a
# smaller xid still runs: `xid` was taken after `allocated` was read, and a writer takes its
# xid before drawing an event id, so every transaction that holds an id <= allocated has a
# smaller xid; once they have all ended, each such id is visible or never will be.
#
# The snapshot's xmin (the oldest running xid of the whole cluster) settles most polls. When
# it does not, the snapshot's running xids are looked up: one held by a session of another
# database cannot hold an id here, so it must not hold the feed back (a writer left idle in
# transaction in any database of the cluster used to stop every live feed). An xid that
# cannot be placed (its session just ended, or belongs to a role whose sessions this one may
# not see) counts as this database's: the next poll sees it gone. (The snapshot's xmax is no
# bound by itself: a writer whose xid is above every completed one is running yet not below
# xmax; it is in the running list.)
def poll_sql(table: str, columns: str) -> str:
    """The poll statement for an event table whose columns (aliased `e`) are `columns`."""
    return f"""
WITH snap AS (
    SELECT s, pg_snapshot_xmin(s)::text::bigint AS xmin, pg_snapshot_xmax(s)::text::bigint AS xmax
    FROM pg_current_snapshot() AS s
), pending AS (
    SELECT p.allocated, p.xid FROM unnest($2::bigint[], $3::bigint[]) AS p(allocated, xid)
), bound AS (
    SELECT CASE
        WHEN NOT EXISTS (SELECT 1 FROM pending WHERE pending.xid > snap.xmin) THEN snap.xmin
        ELSE least(snap.xmax, (
            SELECT min(x::text::bigint) FROM pg_snapshot_xip(snap.s) AS x
            WHERE NOT EXISTS (
                SELECT 1 FROM pg_stat_activity a
                WHERE a.backend_xid::text::bigint = x::text::bigint % 4294967296
                  AND a.datname IS DISTINCT FROM current_database()
            )
        ))
    END AS b
    FROM snap
), horizon AS (
    SELECT greatest($5::bigint, max(p.allocated)) AS h
    FROM bound, pending AS p
    WHERE p.xid <= bound.b
)
SELECT bound.b AS xmin, horizon.h,
       CASE WHEN $6::boolean THEN pg_current_xact_id()::text::bigint END AS xid,
       {columns}
FROM bound CROSS JOIN horizon
LEFT JOIN LATERAL (
    SELECT {columns} FROM {table} e
    WHERE e.id > $1 AND e.id <= horizon.h
    ORDER BY e.id
    LIMIT $4
) AS e ON true
ORDER BY e.id
"""


@dataclass(frozen=True)
class Source:
    """An event table the hub releases: its name (also its NOTIFY channel), its columns
    as the poll selects them, and how a row becomes an event (anything with an `id`)."""

    table: str
    columns: str
    decode: Callable[[asyncpg.Record], Any]
    # False for a table whose writers send no NOTIFY: the hub only polls it
    notifies: bool = True

    @cached_property
    def sql(self) -> str:
        return poll_sql(self.table, self.columns)


ORDERS = Source("order_events", _COLUMNS, _event)


async def poll(
    conn: asyncpg.Connection,
    *,
    released: int,
    settled: int,
    pending: Sequence[tuple[int, int]],
    limit: int,
    take_xid: bool,
    source: Source = ORDERS,
) -> Poll:
    """Events above `released` that are final, given the horizon already known to be
    settled and pending (allocated id, xid) pairs.

    With `take_xid` the poll takes an xid of its own (run it on a connection with
    synchronous_commit off: it commits nothing worth a flush); call it right after
    reading the allocated id, and the pair (that id, returned xid) settles in a later poll.
    """
    rows = await conn.fetch(
        source.sql,
        released,
        [allocated for allocated, _ in pending],
        [xid for _, xid in pending],
        limit,
        settled,
        take_xid,
    )
    first = rows[0]
    events = [source.decode(row) for row in rows if row["id"] is not None]
    return Poll(xmin=first["xmin"], horizon=first["h"], events=events, xid=first["xid"])


def _status_clause(status: str | None, index: int) -> str:
    return f" AND e.payload->>'status' = ${index}" if status else ""


async def between(
    conn: asyncpg.Connection, after: int, upto: int, *, status: str | None, limit: int
) -> list[OrderEvent]:
    """Events with after < id <= upto in id order (a replay page for a resuming client)."""
    args: list[Any] = [after, upto, limit]
    if status:
        args.append(status)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM order_events e WHERE e.id > $1 AND e.id <= $2"
        f"{_status_clause(status, 4)} ORDER BY e.id LIMIT $3",
        *args,
    )
    return [_event(row) for row in rows]


async def recent(
    conn: asyncpg.Connection, *, upto: int | None, status: str | None, limit: int
) -> list[OrderEvent]:
    """The newest events (newest first), at most up to id `upto` when given."""
    args: list[Any] = [limit, upto]
    if status:
        args.append(status)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM order_events e WHERE ($2::bigint IS NULL OR e.id <= $2)"
        f"{_status_clause(status, 3)} ORDER BY e.id DESC LIMIT $1",
        *args,
    )
    return [_event(row) for row in rows]


async def max_id(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM order_events"))


async def too_far_behind(
    conn: asyncpg.Connection, after: int, upto: int, *, max_events: int, max_hours: float
) -> bool:
    """True when more than `max_events` events lie in (after, upto], or the first of
    them is older than `max_hours`: a resume point too old to be worth replaying."""
    if upto <= after:
        return False
    # ids are dense but for rolled-back gaps: a distance within the cap needs no count
    count_needed = upto - after > max_events
    row = await conn.fetchrow(
        """
        SELECT (SELECT e.created_at < now() - make_interval(secs => $4 * 3600)
                FROM order_events e WHERE e.id > $1 AND e.id <= $2
                ORDER BY e.id LIMIT 1) AS stale,
               CASE WHEN $5::boolean THEN
                   (SELECT count(*) FROM (SELECT 1 FROM order_events e
                    WHERE e.id > $1 AND e.id <= $2 ORDER BY e.id LIMIT $3 + 1) AS s)
               END AS behind
        """,
        after,
        upto,
        max_events,
        max_hours,
        count_needed,
    )
    assert row is not None
    return bool(row["stale"]) or (row["behind"] or 0) > max_events
