"""The users table: list query (filters, sort, keyset), reads and writes with version checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
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
    parse_limit,
    parse_search,
    parse_sort,
    sort_urls,
)

# The exact expression of the trigram index users_search_trgm; the planner only uses the
# index when the query repeats it character for character.
SEARCH_EXPRESSION = "(username || ' ' || email || ' ' || full_name)"

SORT_COLUMNS: dict[str, SortColumn] = {
    c.key: c
    for c in (
        SortColumn("id", "id", Kind.INT),
        SortColumn("username", "username", Kind.TEXT),
        SortColumn("email", "email", Kind.TEXT),
        SortColumn("full_name", "full_name", Kind.TEXT),
        SortColumn("is_active", "is_active", Kind.BOOL),
        SortColumn("created_at", "created_at", Kind.TIMESTAMP),
    )
}
DEFAULT_SORT = "id"
DEFAULT_DIR = "asc"

_ACTIVE_VALUES = {
    "": None,
    "all": None,
    "true": True,
    "1": True,
    "yes": True,
    "false": False,
    "0": False,
    "no": False,
}


def parse_active(raw: str | None) -> bool | None:
    text = (raw or "").strip().lower()
    if text not in _ACTIVE_VALUES:
        raise InvalidQuery("The 'active' filter must be 'true', 'false' or empty.")
    return _ACTIVE_VALUES[text]


@dataclass(frozen=True)
class UserQuery:
    """A parsed, validated users list request: search, filter, sort, cursor, page size."""

    q: str = ""
    active: bool | None = None
    sort: SortColumn = SORT_COLUMNS[DEFAULT_SORT]
    descending: bool = False
    after: Cursor | None = None
    before: Cursor | None = None
    limit: int = 50

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> UserQuery:
        """Parse query parameters; raises InvalidQuery (a ValueError) with a user-facing message."""
        sort, descending = parse_sort(params, SORT_COLUMNS, DEFAULT_SORT, DEFAULT_DIR)
        after, before = parse_cursors(params, sort)
        return cls(
            q=parse_search(params.get("q")),
            active=parse_active(params.get("active")),
            sort=sort,
            descending=descending,
            after=after,
            before=before,
            limit=parse_limit(params.get("limit")),
        )

    @property
    def is_filtered(self) -> bool:
        return bool(self.q) or self.active is not None

    @property
    def dir(self) -> str:
        return "desc" if self.descending else "asc"

    def filter_sql(self, first_param: int = 1) -> tuple[str, str, list[object]]:
        """(WHERE clause or "", ORDER BY clause, args) over plain `users` columns; no cursor."""
        conditions: list[str] = []
        args: list[object] = []
        if self.q:
            args.append(like_pattern(self.q))
            conditions.append(f"{SEARCH_EXPRESSION} ILIKE ${first_param + len(args) - 1}")
        if self.active is not None:
            args.append(self.active)
            conditions.append(f"is_active = ${first_param + len(args) - 1}")
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        return where, order_by(self.sort, self.descending), args

    def sort_urls(self) -> dict[str, str]:
        """The link of each sortable column header (by sort key)."""
        return sort_urls("/users", self, SORT_COLUMNS)

    def params(self, **changes: str | None) -> dict[str, str]:
        """The query string of this view (without cursors), with `changes` applied."""
        current: dict[str, str | None] = {
            "q": self.q or None,
            "active": None if self.active is None else ("true" if self.active else "false"),
            "sort": None if self.sort.key == DEFAULT_SORT else self.sort.key,
            "dir": self.dir if (self.sort.key, self.dir) != (DEFAULT_SORT, DEFAULT_DIR) else None,
            "limit": None if self.limit == 50 else str(self.limit),
        }
        current.update(changes)
        return {k: v for k, v in current.items() if v}


# ---- reads and writes

COLUMNS = "id, username, email, full_name, is_active, created_at, updated_at, version"
# what a list row shows (users/_user_row.html): every column decoded costs on each page
LIST_COLUMNS = "id, username, email, full_name, is_active, created_at, version"
EDITABLE = ("username", "email", "full_name", "is_active")


def snapshot(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as a JSON-able dict for the audit log and conflict views."""
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in dict(row).items()
    }


async def list_page(conn: asyncpg.Connection, query: UserQuery) -> Page:
    return await fetch_page(conn, "users", LIST_COLUMNS, query)


async def total(
    conn: asyncpg.Connection, query: UserQuery, estimates: RowEstimates | None = None
) -> Total:
    return await estimate_total(
        conn, "users", query, filtered=query.is_filtered, estimates=estimates
    )


async def exact_count(conn: asyncpg.Connection, query: UserQuery) -> int | None:
    return await exact_total(conn, "users", query)


async def get(
    conn: asyncpg.Connection, user_id: int, *, lock: bool = False
) -> asyncpg.Record | None:
    suffix = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM users WHERE id = $1{suffix}", user_id)


async def order_count(conn: asyncpg.Connection, user_id: int) -> int:
    value: int = await conn.fetchval("SELECT count(*) FROM orders WHERE user_id = $1", user_id)
    return value


async def username_taken(conn: asyncpg.Connection, username: str, *, except_id: int | None) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM users WHERE username = $1 AND id IS DISTINCT FROM $2)",
            username,
            except_id,
        )
    )


async def email_taken(conn: asyncpg.Connection, email: str, *, except_id: int | None) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1)"
            " AND id IS DISTINCT FROM $2)",
            email,
            except_id,
        )
    )


async def create(conn: asyncpg.Connection, values: Mapping[str, Any]) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"""
        INSERT INTO users (username, email, full_name, is_active)
        VALUES ($1, $2, $3, $4)
        RETURNING {COLUMNS}
        """,
        values["username"],
        values["email"],
        values["full_name"],
        values["is_active"],
    )
    return row


async def update(
    conn: asyncpg.Connection, user_id: int, version: int, values: Mapping[str, Any]
) -> asyncpg.Record | None:
    """The updated row, or None when the row is gone or no longer at `version`."""
    return await conn.fetchrow(
        f"""
        UPDATE users SET username = $3, email = $4, full_name = $5, is_active = $6
        WHERE id = $1 AND version = $2
        RETURNING {COLUMNS}
        """,
        user_id,
        version,
        values["username"],
        values["email"],
        values["full_name"],
        values["is_active"],
    )


async def delete(
    conn: asyncpg.Connection, user_id: int, version: int | None
) -> asyncpg.Record | None:
    """The deleted row, or None when it is gone (or moved past `version`, when given)."""
    return await conn.fetchrow(
        f"DELETE FROM users WHERE id = $1 AND ($2::int IS NULL OR version = $2)"
        f" RETURNING {COLUMNS}",
        user_id,
        version,
    )


def _target(query: UserQuery, ids: Sequence[int] | None) -> tuple[str, list[object]]:
    return bulk_target("users", query.filter_sql(), ids)


async def count_targets(
    conn: asyncpg.Connection, query: UserQuery, ids: Sequence[int] | None
) -> int:
    return await count_bulk_target(conn, _target(query, ids))


async def bulk_set_active(
    conn: asyncpg.Connection, query: UserQuery, ids: Sequence[int] | None, active: bool
) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
    """Set is_active on every targeted row that differs, in one statement; (id, before, after)."""
    sql, args = _target(query, ids)
    n = len(args) + 1
    rows = await conn.fetch(
        f"""
        UPDATE users SET is_active = ${n}
        FROM users AS old
        WHERE old.id = users.id AND users.id IN ({sql}) AND users.is_active IS DISTINCT FROM ${n}
        RETURNING users.id, old.is_active AS before_active, old.version AS before_version,
                  users.version AS after_version
        """,
        *args,
        active,
    )
    return [
        (
            r["id"],
            {"is_active": r["before_active"], "version": r["before_version"]},
            {"is_active": active, "version": r["after_version"]},
        )
        for r in rows
    ]


async def bulk_delete(
    conn: asyncpg.Connection, query: UserQuery, ids: Sequence[int] | None
) -> list[asyncpg.Record]:
    """Delete every targeted row in one statement (the orders FK refuses the whole statement)."""
    sql, args = _target(query, ids)
    return await conn.fetch(f"DELETE FROM users WHERE id IN ({sql}) RETURNING {COLUMNS}", *args)
