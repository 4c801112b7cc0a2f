"""Undo of a reversible bulk change (a status, active or not) for a few minutes after it.

The change's own audit entries are the record of what to put back: each record whose column
still holds the value the change wrote gets its value from before, through the same audited
bulk write; records changed again since are left alone and counted. A short-lived cookie
points the list at the change to offer (no query on the list's hot path); the undo itself
checks everything against the audit log (the staff member's own entries, recent enough).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from admin import audit
from admin.access import client_ip, current_staff
from admin.resources import store
from admin.resources.model import Table
from admin.resources.spec import BulkAction

COOKIE = "admin_undo"
WINDOW_SECONDS = 600


@dataclass(frozen=True)
class Offer:
    resource: str
    first_id: int
    last_id: int
    label: str  # "Deactivate: 60 users"

    @property
    def token(self) -> str:
        return f"{self.first_id}-{self.last_id}"


def reversible(table: Table, action: BulkAction) -> bool:
    """A change of one column to a choice or a yes/no, which another such change reverts."""
    column = table.by_name.get(action.column or "")
    return column is not None and not action.delete and column.editable


async def batch_ids(
    conn: asyncpg.Connection, staff_id: int, action: str, resource: str
) -> tuple[int, int] | None:
    """The audit ids the current transaction wrote for this change."""
    row = await conn.fetchrow(
        "SELECT min(id) AS first, max(id) AS last FROM audit_log"
        " WHERE staff_id = $1 AND action = $2 AND resource = $3 AND at = now()",
        staff_id,
        action,
        resource,
    )
    if row is None or row["first"] is None:
        return None
    return int(row["first"]), int(row["last"])


def remember(response: Response, offer: Offer, secure: bool) -> None:
    value = f"{offer.resource}|{offer.token}|{offer.label}"
    response.set_cookie(
        COOKIE,
        value.encode("utf-8").hex(),
        max_age=WINDOW_SECONDS,
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def forget(response: Response) -> None:
    response.delete_cookie(COOKIE)


def offered(request: Request, table: Table) -> Offer | None:
    """The undo this list should offer, from the cookie (checked again when it is used)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        resource, token, label = bytes.fromhex(raw).decode("utf-8").split("|", 2)
        first, last = parse_token(token)
    except ValueError:
        return None
    if resource != table.slug:
        return None
    return Offer(resource, first, last, label)


def parse_token(token: str) -> tuple[int, int]:
    first, _, last = token.partition("-")
    if not (first.isascii() and first.isdigit() and last.isascii() and last.isdigit()):
        raise ValueError(token)
    return int(first), int(last)


async def undo(
    request: Request, conn: asyncpg.Connection, table: Table, first: int, last: int
) -> tuple[int, int] | None:
    """(records put back, records changed again since and left alone); None when there is
    nothing of this staff member's to undo in that range any more."""
    staff = current_staff(request)
    entries = await conn.fetch(
        "SELECT action, resource_id, before, after FROM audit_log"
        " WHERE staff_id = $1 AND id BETWEEN $2 AND $3 AND resource = $4"
        " AND action LIKE 'bulk\\_%' AND action <> 'bulk_delete'"
        " AND at > now() - make_interval(secs => $5)",
        staff.id,
        first,
        last,
        table.slug,
        WINDOW_SECONDS,
    )
    if not entries or len({e["action"] for e in entries}) != 1:
        return None
    groups: dict[tuple[str, Any, Any], list[tuple[Any, ...]]] = defaultdict(list)
    for entry in entries:
        before, after = entry["before"], entry["after"]
        if not isinstance(before, dict) or not isinstance(after, dict):
            continue
        for name in before:
            column = table.by_name.get(name)
            if column is None or name == "version" or not column.editable:
                continue
            groups[(name, before[name], after.get(name))].append(
                table.parse_key(entry["resource_id"])
            )
    restored: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for (name, before_value, after_value), keys in groups.items():
        column = table.by_name[name]
        columns = table.key_columns_sql
        arrays = [f"${i + 1}::{c.info.type_sql}[]" for i, c in enumerate(table.primary_key)]
        args: list[object] = [[k[i] for k in keys] for i in range(len(table.primary_key))]
        args.append(after_value)
        target = (
            f"SELECT {columns} FROM {table.qualified} AS t WHERE ({columns}) IN"
            f" (SELECT * FROM unnest({', '.join(arrays)}))"
            f" AND t.{column.quoted} = ${len(args)}::{column.info.type_sql}",
            args,
        )
        restored += await store.bulk_set(conn, table, target, column, before_value)
    await audit.record_many(
        conn,
        staff=staff,
        action="undo_" + entries[0]["action"],
        resource=table.slug,
        entries=restored,  # type: ignore[arg-type]
        ip=client_ip(request),
    )
    return len(restored), len(entries) - len(restored)
