"""A bulk action over many matching records, a batch per request: each batch takes the next
BATCH_SIZE matching records in primary-key order after the last one done, changes them in
its own transaction and says how far it got. No request runs long, the page shows progress,
and stopping between two batches leaves every finished batch done and audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from admin.resources.model import Table
from admin.resources.query import ListQuery

BATCH_SIZE = 2_000


@dataclass(frozen=True)
class Progress:
    """Carried from batch to batch by the progress page (checked again on each request)."""

    done: int = 0  # records looked at
    changed: int = 0
    total: int = 0  # the count the confirm step showed
    last_key: str = ""  # the key of the last record done ("" before the first batch)
    first_audit: int = 0  # the audit entries written so far (the range an undo covers)
    last_audit: int = 0

    @classmethod
    def from_form(cls, table: Table, form: Any) -> Progress:
        """ValueError when a value is not what a progress page sends."""

        def number(name: str) -> int:
            text = str(form.get(name, "0")).strip() or "0"
            if not text.isascii() or not text.isdigit() or len(text) > 15:
                raise ValueError(name)
            return int(text)

        last_key = str(form.get("last_key", "")).strip()
        if last_key:
            table.parse_key(last_key)
        return cls(
            done=number("done"),
            changed=number("changed"),
            total=number("total"),
            last_key=last_key,
            first_audit=number("first_audit"),
            last_audit=number("last_audit"),
        )

    @property
    def percent(self) -> int:
        return 100 if self.total <= 0 else min(100, round(100 * self.done / self.total))


async def next_keys(
    conn: asyncpg.Connection, table: Table, query: ListQuery, last_key: str
) -> list[tuple[Any, ...]]:
    """The next BATCH_SIZE matching records' keys after `last_key`, in key order."""
    search, conditions, args = query.conditions()
    if search:
        conditions = [search, *conditions]
    columns = [f"t.{c.quoted}" for c in table.primary_key]
    if last_key:
        after = table.parse_key(last_key)
        params = [f"${len(args) + i + 1}" for i in range(len(after))]
        args = [*args, *after]
        conditions.append(f"({', '.join(columns)}) > ({', '.join(params)})")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    order = ", ".join(columns)
    rows = await conn.fetch(
        f"SELECT {order} FROM {table.qualified} AS t {where} ORDER BY {order} LIMIT {BATCH_SIZE}",
        *args,
    )
    return [tuple(r) for r in rows]
