"""The audit log: one row per write, in the same transaction as the write."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import asyncpg

from admin.staff.table import StaffMember


async def record(
    conn: asyncpg.Connection,
    *,
    staff: StaffMember | None,
    action: str,
    resource: str,
    resource_id: object | None = None,
    before: Any = None,
    after: Any = None,
    ip: str | None = None,
    staff_username: str | None = None,
) -> None:
    """Append one entry. Call it inside the transaction of the change it describes."""
    await conn.execute(
        """
        INSERT INTO audit_log (staff_id, staff_username, action, resource, resource_id,
                               before, after, ip)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        """,
        staff.id if staff else None,
        staff.username if staff else staff_username,
        action,
        resource,
        None if resource_id is None else str(resource_id),
        before,
        after,
        ip,
    )


async def record_many(
    conn: asyncpg.Connection,
    *,
    staff: StaffMember | None,
    action: str,
    resource: str,
    entries: list[tuple[object, Any, Any]],
    ip: str | None = None,
) -> None:
    """One entry per (resource_id, before, after), written by one statement."""
    if not entries:
        return
    await conn.execute(
        """
        INSERT INTO audit_log (staff_id, staff_username, action, resource, resource_id,
                               before, after, ip)
        SELECT $1, $2, $3, $4, e.resource_id, e.before, e.after, $5
        FROM unnest($6::text[], $7::jsonb[], $8::jsonb[]) AS e(resource_id, before, after)
        """,
        staff.id if staff else None,
        staff.username if staff else None,
        action,
        resource,
        ip,
        [str(rid) for rid, _, _ in entries],
        [before for _, before, _ in entries],
        [after for _, _, after in entries],
    )


# ---- reading the log

# Filter name (query parameter) -> column; only these columns are ever filtered on.
FILTER_COLUMNS = {
    "staff": "staff_username",
    "action": "action",
    "resource": "resource",
    "resource_id": "resource_id",
}


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    staff_id: int | None
    staff_username: str | None
    action: str
    resource: str
    resource_id: str | None
    before: Any
    after: Any
    ip: str | None

    def changes(self) -> list[tuple[str, Any, Any]]:
        """(field, before, after) for every field that differs; whole values otherwise."""
        old = {} if self.before is None else self.before
        new = {} if self.after is None else self.after
        if isinstance(old, dict) and isinstance(new, dict):
            keys = list(dict.fromkeys([*old, *new]))
            return [
                (key, old.get(key), new.get(key)) for key in keys if old.get(key) != new.get(key)
            ]
        return [("", self.before, self.after)]


async def list_entries(
    conn: asyncpg.Connection,
    filters: Mapping[str, str],
    *,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[Entry], int | None]:
    """Newest first; returns (entries, the `before` cursor of the next page or None)."""
    clauses: list[str] = []
    args: list[object] = []
    for name, column in FILTER_COLUMNS.items():
        value = filters.get(name)
        if value:
            args.append(value)
            clauses.append(f'"{column}" = ${len(args)}')
    if before is not None:
        args.append(before)
        clauses.append(f"id < ${len(args)}")
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    args.append(limit + 1)
    rows = await conn.fetch(
        "SELECT id, at, staff_id, staff_username, action, resource, resource_id, before, after,"
        f" ip FROM audit_log {where} ORDER BY id DESC LIMIT ${len(args)}",
        *args,
    )
    entries = [Entry(**dict(row)) for row in rows[:limit]]
    next_before = entries[-1].id if len(rows) > limit else None
    return entries, next_before


async def record_entry(
    conn: asyncpg.Connection, entry_id: int, resource: str, resource_id: str
) -> Entry | None:
    """Entry `entry_id` if it belongs to this record, else None."""
    row = await conn.fetchrow(
        "SELECT id, at, staff_id, staff_username, action, resource, resource_id, before, after,"
        " ip FROM audit_log WHERE id = $1 AND resource = $2 AND resource_id = $3",
        entry_id,
        resource,
        resource_id,
    )
    return None if row is None else Entry(**dict(row))


def history_url(resource: str, resource_id: object) -> str:
    """The audit log filtered to one record: what a record's page links to."""
    return "/audit?" + urlencode({"resource": resource, "resource_id": str(resource_id)})
