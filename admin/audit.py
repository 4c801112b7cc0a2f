"""The audit log: one row per write, in the same transaction as the write."""

from __future__ import annotations

from typing import Any

import asyncpg

from admin.staff import StaffMember


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
