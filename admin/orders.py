"""The orders table: list query (filters, sort, keyset), reads and writes with version checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from admin.listing import (
    Cursor,
    InvalidQuery,
    Kind,
    Page,
    RowEstimates,
    SortColumn,
    Total,
    bulk_target,
    count_bulk_target,
    estimate_total,
    exact_total,
    fetch_page,
    like_pattern,
    order_by,
    parse_cursors,
    parse_date,
    parse_limit,
    parse_search,
    parse_sort,
    sort_urls,
)
from admin.users import SEARCH_EXPRESSION as USER_SEARCH_EXPRESSION

STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")
MAX_ORDER_ID = 2**63 - 1

SORT_COLUMNS: dict[str, SortColumn] = {
    c.key: c
    for c in (
        SortColumn("id", "id", Kind.INT),
        SortColumn("user_id", "user_id", Kind.INT),
        SortColumn("status", "status", Kind.TEXT),
        SortColumn("total", "total", Kind.DECIMAL),
        SortColumn("created_at", "created_at", Kind.TIMESTAMP),
        SortColumn("updated_at", "updated_at", Kind.TIMESTAMP),
    )
}
DEFAULT_SORT = "id"
DEFAULT_DIR = "desc"


def parse_status(raw: str | None) -> str | None:
    text = (raw or "").strip().lower()
    if not text or text == "all":
        return None
    if text not in STATUSES:
        raise InvalidQuery(f"Unknown status {text[:40]!r}; choose one of: {', '.join(STATUSES)}.")
    return text


def parse_user_id(raw: str | None) -> int | None:
    text = (raw or "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or int(text) > MAX_ORDER_ID:
        raise InvalidQuery("The 'user' filter must be a user id (a whole number).")
    return int(text)


@dataclass(frozen=True)
class OrderQuery:
    """A parsed, validated orders list request: search, filters, sort, cursor, page size."""

    q: str = ""
    status: str | None = None
    user_id: int | None = None
    created_from: date | None = None
    created_to: date | None = None
    sort: SortColumn = SORT_COLUMNS[DEFAULT_SORT]
    descending: bool = True
    after: Cursor | None = None
    before: Cursor | None = None
    limit: int = 50

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> OrderQuery:
        """Parse query parameters; raises InvalidQuery (a ValueError) with a user-facing message."""
        sort, descending = parse_sort(params, SORT_COLUMNS, DEFAULT_SORT, DEFAULT_DIR)
        after, before = parse_cursors(params, sort)
        created_from = parse_date(params, "created_from", "'Created from'")
        created_to = parse_date(params, "created_to", "'Created to'")
        if created_from and created_to and created_from > created_to:
            raise InvalidQuery("'Created from' is after 'Created to'.")
        return cls(
            q=parse_search(params.get("q")),
            status=parse_status(params.get("status")),
            user_id=parse_user_id(params.get("user")),
            created_from=created_from,
            created_to=created_to,
            sort=sort,
            descending=descending,
            after=after,
            before=before,
            limit=parse_limit(params.get("limit")),
        )

    @property
    def is_filtered(self) -> bool:
        dates = self.created_from or self.created_to
        return bool(self.q or self.status or self.user_id is not None or dates)

    @property
    def dir(self) -> str:
        return "desc" if self.descending else "asc"

    def filter_sql(self, first_param: int = 1) -> tuple[str, str, list[object]]:
        """(WHERE clause or "", ORDER BY clause, args) over plain `orders` columns; no cursor."""
        conditions: list[str] = []
        args: list[object] = []

        def param(value: object) -> str:
            args.append(value)
            return f"${first_param + len(args) - 1}"

        if self.q:
            if self.q.isascii() and self.q.isdigit():
                number = int(self.q)
                conditions.append(f"id = {param(number)}" if number <= MAX_ORDER_ID else "false")
            else:
                pattern = param(like_pattern(self.q))
                # the trigram index narrows the users; the recheck keeps it to username/email
                conditions.append(
                    "user_id IN (SELECT users.id FROM users"
                    f" WHERE {USER_SEARCH_EXPRESSION} ILIKE {pattern}"
                    f" AND (users.username ILIKE {pattern} OR users.email ILIKE {pattern}))"
                )
        if self.status is not None:
            conditions.append(f"status = {param(self.status)}")
        if self.user_id is not None:
            conditions.append(f"user_id = {param(self.user_id)}")
        if self.created_from is not None:
            conditions.append(f"created_at >= {param(self.created_from)}::date")
        if self.created_to is not None:
            conditions.append(f"created_at < {param(self.created_to)}::date + 1")
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        return where, order_by(self.sort, self.descending), args

    def sort_urls(self) -> dict[str, str]:
        """The link of each sortable column header (by sort key)."""
        return sort_urls("/orders", self, SORT_COLUMNS)

    def params(self, **changes: str | None) -> dict[str, str]:
        """The query string of this view (without cursors), with `changes` applied."""
        current: dict[str, str | None] = {
            "q": self.q or None,
            "status": self.status,
            "user": None if self.user_id is None else str(self.user_id),
            "created_from": self.created_from.isoformat() if self.created_from else None,
            "created_to": self.created_to.isoformat() if self.created_to else None,
            "sort": None if self.sort.key == DEFAULT_SORT else self.sort.key,
            "dir": self.dir if (self.sort.key, self.dir) != (DEFAULT_SORT, DEFAULT_DIR) else None,
            "limit": None if self.limit == 50 else str(self.limit),
        }
        current.update(changes)
        return {k: v for k, v in current.items() if v}


# ---- reads and writes

COLUMNS = "id, user_id, status, total, created_at, updated_at, version"
# the customer's username, looked up per row of the page (a join would make plain column
# names ambiguous in the shared filter clause)
LIST_COLUMNS = (
    f"{COLUMNS}, (SELECT users.username FROM users WHERE users.id = orders.user_id) AS username"
)


def snapshot(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as a JSON-able dict for the audit log and conflict views."""
    out: dict[str, Any] = {}
    for key, value in dict(row).items():
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        out[key] = value
    return out


async def list_page(conn: asyncpg.Connection, query: OrderQuery) -> Page:
    return await fetch_page(conn, "orders", LIST_COLUMNS, query)


async def total(
    conn: asyncpg.Connection, query: OrderQuery, estimates: RowEstimates | None = None
) -> Total:
    return await estimate_total(
        conn, "orders", query, filtered=query.is_filtered, estimates=estimates
    )


async def exact_count(conn: asyncpg.Connection, query: OrderQuery) -> int | None:
    return await exact_total(conn, "orders", query)


async def get(conn: asyncpg.Connection, order_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {LIST_COLUMNS} FROM orders WHERE id = $1", order_id)


async def events(conn: asyncpg.Connection, order_id: int, limit: int = 200) -> list[asyncpg.Record]:
    """The order's history, newest first."""
    return await conn.fetch(
        "SELECT id, kind, payload, created_at FROM order_events"
        " WHERE order_id = $1 ORDER BY id DESC LIMIT $2",
        order_id,
        limit,
    )


async def update(
    conn: asyncpg.Connection, order_id: int, version: int, *, status: str, total: Decimal
) -> asyncpg.Record | None:
    """The updated row, or None when the row is gone or no longer at `version`."""
    return await conn.fetchrow(
        f"""
        UPDATE orders SET status = $3, total = $4
        WHERE id = $1 AND version = $2
        RETURNING {LIST_COLUMNS}
        """,
        order_id,
        version,
        status,
        total,
    )


async def delete(
    conn: asyncpg.Connection, order_id: int, version: int | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"DELETE FROM orders WHERE id = $1 AND ($2::int IS NULL OR version = $2)"
        f" RETURNING {COLUMNS}",
        order_id,
        version,
    )


def _target(query: OrderQuery, ids: Sequence[int] | None) -> tuple[str, list[object]]:
    return bulk_target("orders", query.filter_sql(), ids)


async def count_targets(
    conn: asyncpg.Connection, query: OrderQuery, ids: Sequence[int] | None
) -> int:
    return await count_bulk_target(conn, _target(query, ids))


async def bulk_set_status(
    conn: asyncpg.Connection, query: OrderQuery, ids: Sequence[int] | None, status: str
) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
    """Set the status of every targeted order that differs, in one statement."""
    sql, args = _target(query, ids)
    n = len(args) + 1
    rows = await conn.fetch(
        f"""
        UPDATE orders SET status = ${n}
        FROM orders AS old
        WHERE old.id = orders.id AND orders.id IN ({sql}) AND orders.status <> ${n}
        RETURNING orders.id, old.status AS before_status, old.version AS before_version,
                  orders.version AS after_version
        """,
        *args,
        status,
    )
    return [
        (
            r["id"],
            {"status": r["before_status"], "version": r["before_version"]},
            {"status": status, "version": r["after_version"]},
        )
        for r in rows
    ]
