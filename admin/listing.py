"""What every list view shares: query errors, sort columns, opaque keyset cursors, page size."""

from __future__ import annotations

import base64
import binascii
import enum
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlencode

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from admin import pg_input

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_QUERY_LENGTH = 200
MAX_CURSOR_LENGTH = 1000


class InvalidQuery(ValueError):
    """A list parameter that cannot be honoured; the message is shown to the user (400)."""


class Kind(enum.Enum):
    """How a sort column's value travels inside a cursor."""

    INT = "int"
    TEXT = "text"
    BOOL = "bool"
    DECIMAL = "decimal"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class SortColumn:
    """A sortable column: the name in the URL, the table column, and its value kind."""

    key: str
    column: str
    kind: Kind


def quote_ident(name: str) -> str:
    """Double-quoted identifier (embedded quotes doubled); names come from whitelists anyway."""
    return '"' + name.replace('"', '""') + '"'


def parse_sort(
    params: Mapping[str, str], columns: Mapping[str, SortColumn], default: str, default_dir: str
) -> tuple[SortColumn, bool]:
    """(column, descending) from `sort` and `dir`; anything outside the whitelist is an error."""
    key = params.get("sort", "").strip() or default
    column = columns.get(key)
    if column is None:
        allowed = ", ".join(columns)
        raise InvalidQuery(f"Cannot sort by {key[:40]!r}; choose one of: {allowed}.")
    direction = params.get("dir", "").strip().lower() or (default_dir if key == default else "asc")
    if direction not in ("asc", "desc"):
        raise InvalidQuery("The sort direction must be 'asc' or 'desc'.")
    return column, direction == "desc"


def parse_limit(raw: str | None) -> int:
    """Page size: default 50, a whole number from 1 to 500."""
    if raw is None or raw.strip() == "":
        return DEFAULT_LIMIT
    text = raw.strip()
    if not text.isascii() or not text.isdigit():
        raise InvalidQuery(f"The page size must be a whole number from 1 to {MAX_LIMIT}.")
    value = int(text)
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidQuery(f"The page size must be a whole number from 1 to {MAX_LIMIT}.")
    return value


def parse_search(raw: str | None) -> str:
    text = (raw or "").strip()
    if len(text) > MAX_QUERY_LENGTH:
        raise InvalidQuery(f"The search text is longer than {MAX_QUERY_LENGTH} characters.")
    if not pg_input.valid_text(text):
        raise InvalidQuery("The search text contains a NUL or an invalid character.")
    return text


def like_pattern(text: str) -> str:
    """A case-insensitive substring pattern where %, _ and \\ match themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class Cursor:
    """A position in a sorted list: the sort key it belongs to, that key's value, and the id."""

    sort: str
    value: Any
    id: int


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value  # PgDateTime (infinity, BC, past 9999) is its PostgreSQL text already


def encode_cursor(sort: SortColumn, value: Any, row_id: int) -> str:
    payload = json.dumps([sort.key, _to_json(value), row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _typed(kind: Kind, value: Any) -> Any:
    """The cursor's sort value as the query parameter; ValueError unless PostgreSQL can take
    it as that column's type (so a forged cursor is a 400, never a database error)."""
    if kind is Kind.INT and pg_input.is_bigint(value):
        return value
    if kind is Kind.TEXT and isinstance(value, str) and pg_input.valid_text(value):
        return value
    if kind is Kind.BOOL and isinstance(value, bool):
        return value
    if kind is Kind.DECIMAL and isinstance(value, str):
        return pg_input.numeric(value)
    if kind is Kind.TIMESTAMP and isinstance(value, str):
        return pg_input.timestamptz(value)
    raise ValueError(value)


def decode_cursor(raw: str, sort: SortColumn) -> Cursor:
    """The cursor in `raw`, checked strictly against the current sort; else InvalidQuery."""
    text = raw.strip()
    if len(text) > MAX_CURSOR_LENGTH:
        raise InvalidQuery("The page cursor is not valid (too long).")
    try:
        padded = text + "=" * (-len(text) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8"))
        if type(data) is not list or len(data) != 3:
            raise ValueError(data)
        key, value, row_id = data
        if key != sort.key:
            raise InvalidQuery("The page cursor belongs to another sort order; start again.")
        if not pg_input.is_bigint(row_id):
            raise ValueError(row_id)
        return Cursor(sort=key, value=_typed(sort.kind, value), id=row_id)
    except InvalidQuery:
        raise
    except (ValueError, TypeError, binascii.Error, UnicodeError, RecursionError):
        raise InvalidQuery("The page cursor is not valid.") from None


def parse_cursors(
    params: Mapping[str, str], sort: SortColumn
) -> tuple[Cursor | None, Cursor | None]:
    after_raw = params.get("after", "").strip()
    before_raw = params.get("before", "").strip()
    if after_raw and before_raw:
        raise InvalidQuery("Use either 'after' or 'before', not both.")
    after = decode_cursor(after_raw, sort) if after_raw else None
    before = decode_cursor(before_raw, sort) if before_raw else None
    return after, before


def parse_date(params: Mapping[str, str], name: str, label: str) -> date | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidQuery(f"{label} must be a date like 2024-05-31.") from None


def order_by(sort: SortColumn, descending: bool) -> str:
    direction = "DESC" if descending else "ASC"
    if sort.column == "id":
        return f"ORDER BY id {direction}"
    return f"ORDER BY {quote_ident(sort.column)} {direction}, id {direction}"


def keyset_condition(
    sort: SortColumn, descending: bool, cursor: Cursor, *, backwards: bool, first_param: int
) -> tuple[str, list[object]]:
    """`(col, id) > ($n, $m)` (or <) for the rows past `cursor` in the direction of travel."""
    forward_op = "<" if descending else ">"
    op = {"<": ">", ">": "<"}[forward_op] if backwards else forward_op
    if sort.column == "id":
        return f"id {op} ${first_param}", [cursor.id]
    column = quote_ident(sort.column)
    return (
        f"({column}, id) {op} (${first_param}, ${first_param + 1})",
        [cursor.value, cursor.id],
    )


@dataclass(frozen=True)
class Page:
    """One page of rows plus the cursors that lead to its neighbours."""

    rows: Sequence[Mapping[str, Any]]
    next_cursor: str | None
    prev_cursor: str | None


def page_from_rows(
    rows: Sequence[Mapping[str, Any]],
    sort: SortColumn,
    *,
    limit: int,
    after: Cursor | None,
    before: Cursor | None,
) -> Page:
    """Trim the one extra row fetched to learn whether another page exists; build cursors."""
    more = len(rows) > limit
    rows = list(rows[:limit])
    if before is not None:
        rows.reverse()
    has_next = before is not None or (more and before is None)
    has_prev = after is not None or (before is not None and more)
    first, last = (rows[0], rows[-1]) if rows else (None, None)
    next_cursor = encode_cursor(sort, last[sort.column], last["id"]) if has_next and last else None
    prev_cursor = (
        encode_cursor(sort, first[sort.column], first["id"]) if has_prev and first else None
    )
    return Page(rows=rows, next_cursor=next_cursor, prev_cursor=prev_cursor)


class SortableQuery(Protocol):
    """What sort_urls needs from UserQuery / OrderQuery."""

    sort: SortColumn
    descending: bool

    def params(self, **changes: str | None) -> dict[str, str]: ...


def sort_urls(path: str, query: SortableQuery, keys: Iterable[str]) -> dict[str, str]:
    """Each column header's link: that column ascending, or reversed when it is the sort."""
    urls = {}
    for key in keys:
        current = key == query.sort.key
        direction = "asc" if current and query.descending else ("desc" if current else "asc")
        urls[key] = f"{path}?{urlencode(query.params(sort=key, dir=direction))}"
    return urls


class ListQuery(Protocol):
    """What fetch_page needs from UserQuery / OrderQuery."""

    sort: SortColumn
    descending: bool
    after: Cursor | None
    before: Cursor | None
    limit: int

    def filter_sql(self, first_param: int = 1) -> tuple[str, str, list[object]]: ...


async def fetch_page(conn: asyncpg.Connection, table: str, select: str, query: ListQuery) -> Page:
    """One keyset page of `table`: WHERE filter AND (sort key, id) past the cursor, LIMIT n+1."""
    where, order, args = query.filter_sql()
    cursor = query.after or query.before
    backwards = query.before is not None
    if cursor is not None:
        condition, extra = keyset_condition(
            query.sort,
            query.descending,
            cursor,
            backwards=backwards,
            first_param=len(args) + 1,
        )
        where = f"{where} AND {condition}" if where else f"WHERE {condition}"
        args = [*args, *extra]
    if backwards:
        order = order_by(query.sort, not query.descending)
    sql = f"SELECT {select} FROM {table} {where} {order} LIMIT {query.limit + 1}"
    rows = await conn.fetch(sql, *args)
    return page_from_rows(
        rows, query.sort, limit=query.limit, after=query.after, before=query.before
    )


SMALL_TABLE = 10_000
COUNT_TIMEOUT = "2s"


@dataclass(frozen=True)
class Total:
    """How many rows match: exact, or the planner's estimate."""

    value: int
    exact: bool


class RowEstimates:
    """Unfiltered row estimates by table, reused for a few seconds.

    pg_class.reltuples only moves on VACUUM and ANALYZE, so re-reading it on every page view
    buys nothing but a round trip. One per app (per database), never shared across databases.
    """

    def __init__(self, ttl_seconds: float = 5.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._values: dict[str, tuple[float, float]] = {}

    def get(self, table: str) -> float | None:
        entry = self._values.get(table)
        if entry is None or time.monotonic() - entry[1] > self.ttl_seconds:
            return None
        return entry[0]

    def put(self, table: str, estimate: float) -> None:
        self._values[table] = (estimate, time.monotonic())


def row_estimates(request: HTTPConnection) -> RowEstimates:
    """The app's RowEstimates, created on first use."""
    state = request.app.state
    estimates: RowEstimates | None = getattr(state, "row_estimates", None)
    if estimates is None:
        estimates = state.row_estimates = RowEstimates()
    return estimates


async def _planned_rows(conn: asyncpg.Connection, table: str, query: ListQuery) -> float:
    where, _, args = query.filter_sql()
    plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table} {where}", *args)
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


async def _unfiltered_estimate(
    conn: asyncpg.Connection, table: str, query: ListQuery, estimates: RowEstimates | None
) -> float:
    cached = estimates.get(table) if estimates is not None else None
    if cached is not None:
        return cached
    estimate = await conn.fetchval("SELECT reltuples FROM pg_class WHERE oid = $1::regclass", table)
    if estimate is None or estimate < 0:  # never vacuumed or analyzed
        estimate = await _planned_rows(conn, table, query)
    if estimates is not None:
        estimates.put(table, estimate)
    return float(estimate)


async def estimate_total(
    conn: asyncpg.Connection,
    table: str,
    query: ListQuery,
    *,
    filtered: bool,
    estimates: RowEstimates | None = None,
) -> Total:
    """The planner's row estimate (pg_class.reltuples unfiltered); exact when that is small.

    `estimates` keeps the unfiltered estimate for a few seconds; the exact count of a small
    table is never cached.
    """
    if filtered:
        estimate = await _planned_rows(conn, table, query)
    else:
        estimate = await _unfiltered_estimate(conn, table, query, estimates)
    if estimate <= SMALL_TABLE:
        exact = await exact_total(conn, table, query)
        if exact is not None:
            return Total(exact, True)
    return Total(int(estimate), False)


async def exact_total(conn: asyncpg.Connection, table: str, query: ListQuery) -> int | None:
    """count(*) of the filtered rows, or None when it took longer than COUNT_TIMEOUT."""
    where, _, args = query.filter_sql()
    try:
        async with conn.transaction(readonly=True):
            await conn.execute(f"SET LOCAL statement_timeout = '{COUNT_TIMEOUT}'")
            value: int = await conn.fetchval(f"SELECT count(*) FROM {table} {where}", *args)
            return value
    except asyncpg.QueryCanceledError:
        return None


def parse_id(raw: str) -> int:
    """A row id from the URL: a positive whole number that fits in bigint."""
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= pg_input.MAX_BIGINT:
        raise InvalidQuery(f"{raw[:40]!r} is not a valid id; ids are positive whole numbers.")
    return int(text)


def path_id(request: HTTPConnection) -> int:
    """The `{id}` of the route as a row id; 400 with the reason when it is malformed."""
    try:
        return parse_id(request.path_params["id"])
    except InvalidQuery as exc:
        raise HTTPException(400, str(exc)) from None


def bulk_ids(form: Any, noun: str) -> list[int] | None:
    """The selected ids of a bulk form, or None when it covers everything matching the filter."""
    if form.get("scope") == "all":
        return None
    try:
        ids = [parse_id(str(v)) for v in form.getlist("ids")]
    except InvalidQuery as exc:
        raise HTTPException(400, str(exc)) from None
    if not ids:
        raise HTTPException(400, f"Select at least one {noun}, or choose 'all matching'.")
    return ids


def bulk_target(
    table: str, filtered: tuple[str, str, list[object]], ids: Sequence[int] | None
) -> tuple[str, list[object]]:
    """The ids a bulk action touches: the selected ones, or all rows matching the filter.

    `table` is the owning module's constant, never input; `filtered` is its `filter_sql()`.
    """
    if ids is not None:
        return f"SELECT id FROM {table} WHERE id = any($1::bigint[])", [list(ids)]
    where, _, args = filtered
    return f"SELECT id FROM {table} {where}", args


async def count_bulk_target(conn: asyncpg.Connection, target: tuple[str, list[object]]) -> int:
    sql, args = target
    value: int = await conn.fetchval(f"SELECT count(*) FROM ({sql}) AS t", *args)
    return value
