"""What a bulk action is about to touch, read before it is confirmed: the first records by
name, and for a delete, how many of them other tables still refer to and what the database
would do about it (refuse, delete those too, clear the reference)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from admin.resources.model import Table, quote_ident
from admin.resources.query import ListQuery
from admin.resources.spec import BulkAction
from admin.resources.tables import Kind

PREVIEW_ROWS = 20
# counting referenced records stops here: the page says "at least" past it
BLOCKER_CAP = 10_000
CHECK_TIMEOUT = "3s"

ON_DELETE = {
    "a": "nothing is deleted while they do",
    "r": "nothing is deleted while they do",
    "c": "those {other} are deleted too",
    "n": "their {column} is cleared",
    "d": "their {column} is set to its default",
}


@dataclass(frozen=True)
class Blocker:
    other: str  # the referring table's plural ("orders")
    column: str
    count: int | None  # referenced records among the targeted ones, up to BLOCKER_CAP;
    # None: not counted within CHECK_TIMEOUT
    capped: bool
    outcome: str
    refuses: bool  # the delete would fail as a whole


async def preview(
    conn: asyncpg.Connection, table: Table, query: ListQuery, target: tuple[str, list[object]]
) -> list[tuple[str, str]]:
    """(key, label) of the first PREVIEW_ROWS targeted records, in the list's order."""
    sql, args = target
    keys = ", ".join(f"t.{c.quoted}" for c in table.primary_key)
    label = table.label_column or table.primary_key[0]
    order = query.order_sql(ascending=not query.descending)
    rows = await conn.fetch(
        f"SELECT {keys}, t.{label.quoted}::text AS __label FROM {table.qualified} AS t"
        f" WHERE ({keys}) IN ({sql}) {order} LIMIT {PREVIEW_ROWS}",
        *args,
    )
    return [(table.key_of(r), r["__label"] or table.key_of(r)) for r in rows]


async def blockers(
    conn: asyncpg.Connection,
    table: Table,
    tables: dict[tuple[str, str], Table],
    target: tuple[str, list[object]],
) -> list[Blocker]:
    """For each single-column key into `table`: how many targeted records are referred to."""
    sql, args = target
    found = []
    for key in table.info.referenced_by:
        if len(key.columns) != 1:
            continue
        other = tables.get((key.schema, key.table))
        other_name = other.plural if other else key.table
        qualified = (
            other.qualified if other else f"{quote_ident(key.schema)}.{quote_ident(key.table)}"
        )
        column = quote_ident(key.columns[0])
        ref = quote_ident(key.ref_columns[0])
        try:
            async with conn.transaction(readonly=True):
                await conn.execute(f"SET LOCAL statement_timeout = '{CHECK_TIMEOUT}'")
                count: int | None = await conn.fetchval(
                    f"SELECT count(*) FROM (SELECT 1 FROM {table.qualified} AS x"
                    f" WHERE (x.{', x.'.join(c.quoted for c in table.primary_key)}) IN ({sql})"
                    f" AND EXISTS (SELECT 1 FROM {qualified} AS o WHERE o.{column} = x.{ref})"
                    f" LIMIT {BLOCKER_CAP}) AS r",
                    *args,
                )
        except asyncpg.QueryCanceledError:
            count = None  # too many to check while the page waits: said, not guessed
        if count == 0:
            continue
        column_label = key.columns[0].removesuffix("_id").replace("_", " ")
        outcome = ON_DELETE.get(key.on_delete, ON_DELETE["a"])
        found.append(
            Blocker(
                other=other_name,
                column=column_label,
                count=count,
                capped=count is not None and count >= BLOCKER_CAP,
                outcome=outcome.format(other=other_name, column=column_label),
                refuses=key.on_delete in ("a", "r"),
            )
        )
    return found


def safe_alternative(table: Table, action: BulkAction) -> BulkAction | None:
    """For a delete: the declared action that switches the records off instead (a boolean
    column set to false, "Deactivate"), when the table has one."""
    if not action.delete:
        return None
    for other in table.bulk_actions:
        column = table.by_name.get(other.column or "")
        if column is not None and column.kind is Kind.BOOLEAN and other.value is False:
            return other
    return None
