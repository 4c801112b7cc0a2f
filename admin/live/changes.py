"""resource_changes SQL: what the capture triggers wrote, as the live hub and replays read it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from admin.live.events import Source

TABLE = "resource_changes"
_COLUMNS = "e.id, e.schema_name, e.table_name, e.op, e.key, e.row_count, e.actor, e.created_at"


@dataclass(eq=False)
class Change:
    """One row of resource_changes, shared by every client of a process: never mutated
    but for `frames`, its rendered SSE frame per table slug."""

    id: int
    schema: str
    table: str
    op: str
    # the primary key's parts as text; None for a summary (row_count rows changed)
    key: tuple[str, ...] | None
    row_count: int
    actor: str | None
    created_at: datetime
    frames: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> tuple[str, str]:
        return (self.schema, self.table)

    def frame(self, slug: str, key_segment: str | None) -> bytes:
        """The SSE frame for this change, under the table's URL slug."""
        found = self.frames.get(slug)
        if found is None:
            data = {
                "table": slug,
                "op": self.op.lower(),
                "key": key_segment,
                "rows": self.row_count,
                "by": self.actor,
                "at": self.created_at.isoformat(),
            }
            body = json.dumps(data, separators=(",", ":"))
            found = self.frames[slug] = f"id: {self.id}\nevent: change\ndata: {body}\n\n".encode()
        return found


def _change(row: asyncpg.Record) -> Change:
    key = row["key"]
    return Change(
        id=row["id"],
        schema=row["schema_name"],
        table=row["table_name"],
        op=row["op"],
        key=tuple(key) if key is not None else None,
        row_count=row["row_count"],
        actor=row["actor"],
        created_at=row["created_at"],
    )


SOURCE = Source(TABLE, _COLUMNS, _change, notifies=False)


async def between(
    conn: asyncpg.Connection,
    after: int,
    upto: int,
    *,
    tables: Sequence[tuple[str, str]],
    limit: int,
) -> tuple[list[Change], int]:
    """Changes to `tables` with after < id <= upto in id order, at most `limit` rows read;
    also the last id read, matching or not (the next page starts after it)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM {TABLE} e WHERE e.id > $1 AND e.id <= $2 ORDER BY e.id LIMIT $3",
        after,
        upto,
        limit,
    )
    wanted = set(tables)
    found = [_change(row) for row in rows]
    last = found[-1].id if found else upto
    if len(found) < limit:
        last = upto
    return [c for c in found if c.name in wanted], last


async def too_far_behind(
    conn: asyncpg.Connection, after: int, upto: int, *, max_events: int, max_hours: float
) -> bool:
    """True when more than `max_events` changes lie in (after, upto], or the first is older
    than `max_hours`: the client reloads instead of replaying."""
    if upto <= after:
        return False
    row = await conn.fetchrow(
        f"""
        SELECT (SELECT e.created_at < now() - make_interval(secs => $3 * 3600)
                FROM {TABLE} e WHERE e.id > $1 AND e.id <= $2 ORDER BY e.id LIMIT 1) AS stale,
               -- what followed `after` may have been purged: nothing kept reaches back to it
               coalesce((SELECT min(e.id) FROM {TABLE} e), $2 + 1) > $1 + 1 AS purged,
               (SELECT count(*) FROM (SELECT 1 FROM {TABLE} e
                WHERE e.id > $1 AND e.id <= $2 ORDER BY e.id LIMIT $4 + 1) AS s) AS behind
        """,
        after,
        upto,
        max_hours,
        max_events,
    )
    assert row is not None
    return bool(row["stale"]) or bool(row["purged"]) or row["behind"] > max_events


# rows purged per statement: short transactions, whatever the backlog
PURGE_BATCH = 10_000
_LOCK = "admin.resource_changes.purge"


async def purge(conn: asyncpg.Connection, keep_hours: float) -> int:
    """Delete changes older than `keep_hours`, oldest first, one short transaction per
    batch; a process finding another one at it skips the batch. Returns how many went."""
    purged = 0
    while True:
        async with conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", _LOCK):
                return purged
            done: int = await conn.fetchval(
                f"""
                WITH gone AS (
                    DELETE FROM {TABLE} WHERE id IN (
                        SELECT id FROM {TABLE}
                        WHERE created_at < now() - make_interval(secs => $1 * 3600)
                        ORDER BY id LIMIT $2)
                    RETURNING 1)
                SELECT count(*) FROM gone
                """,
                keep_hours,
                PURGE_BATCH,
            )
        purged += done
        if done < PURGE_BATCH:
            return purged
