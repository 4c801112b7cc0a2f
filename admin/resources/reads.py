"""Reading one table: a keyset page, totals, one record, references and related records."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import asyncpg
from starlette.requests import HTTPConnection

from admin.resources import cursors
from admin.resources.model import OFFSET_CAP, Column, SortKey, Table, quote_ident
from admin.resources.query import ListQuery
from admin.resources.tables import ForeignKey, Kind

SMALL_TABLE = 10_000
COUNT_TIMEOUT = "2s"
ROW_VERSION = "__token"


def select_expression(column: Column) -> str:
    """How a column is read: bytes and unknown types as their size (shown, never decoded)."""
    if column.kind is Kind.BYTEA:
        return f"octet_length(t.{column.quoted}) AS {column.quoted}"
    if column.kind is Kind.UNKNOWN:
        return f"pg_column_size(t.{column.quoted}) AS {column.quoted}"
    return f"t.{column.quoted}"


def reference_label_sql(table: Table, column: Column, target: Table | None) -> str | None:
    """A correlated lookup of the referenced record's label (one index probe per row)."""
    key = column.reference
    if key is None or target is None or target.label_column is None:
        return None
    ref_col = quote_ident(key.ref_columns[0])
    return (
        f"(SELECT r.{target.label_column.quoted}::text FROM {target.qualified} AS r"
        f" WHERE r.{ref_col} = t.{column.quoted} LIMIT 1) AS {quote_ident(column.ref_label_alias)}"
    )


def select_list(table: Table, columns: Iterable[Column], targets: dict[str, Table | None]) -> str:
    wanted = list(dict.fromkeys([*table.primary_key, *columns]))
    if table.label_column is not None and table.label_column not in wanted:
        wanted.append(table.label_column)
    parts = [select_expression(c) for c in wanted]
    for column in wanted:
        label = reference_label_sql(table, column, targets.get(column.name))
        if label:
            parts.append(label)
    if table.token_sql:
        parts.append(f"t.{table.token_sql}::text AS {ROW_VERSION}")
    return ", ".join(parts)


@dataclass(frozen=True)
class Page:
    rows: Sequence[asyncpg.Record]
    next_cursor: str | None = None
    prev_cursor: str | None = None
    next_offset: int | None = None  # tables without a primary key
    prev_offset: int | None = None
    capped: bool = False  # the offset cap was reached


# A search that matches many rows first looks at up to this many rows in list order (after
# filters and the cursor): a common word fills the page there (the first matches in order are
# the page), where the search index would hand over every match to be sorted. The scan stops
# at a full page, so a common word costs a few hundred rows; a rare one costs the whole window
# before the index answers. The planner's estimates for text patterns are poor (a trigram
# search matching 1% of a million rows is often guessed at 100), so on a big table a search
# with no other filter always looks here first; with filters (which may leave few rows in
# order) only when the planner expects enough matches, dense enough to fill a page here.
SEARCH_WINDOW = 8000
WINDOW_MIN_TABLE = 100_000
WINDOW_MIN_MATCHES = 10_000
WINDOW_MIN_DENSITY = 0.02


def dense_search(query: ListQuery, matches: float) -> bool:
    """Whether a search expected to match `matches` rows should try the list's order first."""
    if not query.q or query.table.search.mode == "exact":
        return False
    rows = query.table.info.estimated_rows
    declared = query.table.search.declared
    if declared is not None and declared.in_order_first:
        return True
    if not query.filters and rows >= WINDOW_MIN_TABLE:
        return True
    return matches >= WINDOW_MIN_MATCHES and rows > 0 and matches / rows >= WINDOW_MIN_DENSITY


async def fetch_page(
    conn: asyncpg.Connection, query: ListQuery, select: str, *, dense: bool = False
) -> Page:
    """One page of the list. `dense`: the search is expected to match many rows."""
    table = query.table
    if query.sort is None:
        where, _, args = query.filter_sql()
        return await _offset_page(conn, query, select, where, args)
    search, conditions, args = query.conditions()
    cursor = query.after or query.before
    # the last page is the first page of the list read backwards
    backwards = query.before is not None or query.last
    ascending = query.descending == backwards
    if cursor is not None:
        condition, extra = cursors.condition(
            table, query.sort_keys, cursor, ascending=ascending, first_param=len(args) + 1
        )
        conditions.append(condition)
        args = [*args, *extra]
    order = query.order_sql(ascending=ascending)
    rows: list[asyncpg.Record] | None = None
    collect = False
    if search is not None and dense:
        rows, found = await _search_in_order(conn, query, select, search, conditions, order, args)
        collect = rows is None and _collect_matches(query, found)
    if rows is None:
        where = " AND ".join([c for c in (search, *conditions) if c])
        where = f"WHERE {where}" if where else ""
        limit = f"LIMIT {query.limit + 1}"
        if collect:
            # every match through the search index, then the page: the planner would walk
            # the list's order instead, trusting its (poor) estimate of trigram matches
            system = ", t.xmin" if table.writable and not table.bumps_version else ""
            sql = (
                f"WITH m AS MATERIALIZED (SELECT t.*{system} FROM {table.qualified} AS t {where})"
                f" SELECT {select} FROM m AS t {order} {limit}"
            )
        else:
            sql = f"SELECT {select} FROM {table.qualified} AS t {where} {order} {limit}"
        rows = list(await conn.fetch(sql, *args))
    more = len(rows) > query.limit
    rows = list(rows[: query.limit])
    if backwards:
        rows.reverse()
    has_next = (backwards and not query.last) or (more and not backwards)
    has_prev = query.after is not None or (backwards and more)
    order_columns = query.sort_keys
    return Page(
        rows=rows,
        next_cursor=cursors.encode(table, order_columns, rows[-1]) if has_next and rows else None,
        prev_cursor=cursors.encode(table, order_columns, rows[0]) if has_prev and rows else None,
    )


async def _search_in_order(
    conn: asyncpg.Connection,
    query: ListQuery,
    select: str,
    search: str,
    conditions: list[str],
    order: str,
    args: list[object],
) -> tuple[list[asyncpg.Record] | None, int]:
    """The page when the first SEARCH_WINDOW rows in order hold a full page of matches,
    None when they don't (then only the search index can say which rows match); and how
    many matches the window held."""
    table = query.table
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    # xmin is a system column: `t.*` leaves it out, and the select list may want it
    system = ", t.xmin" if table.writable and not table.bumps_version else ""
    window = f"SELECT t.*{system} FROM {table.qualified} AS t {where} {order} LIMIT {SEARCH_WINDOW}"
    declared = table.search.declared
    if declared is not None and declared.in_order_first:
        # OFFSET 0 keeps the planner from turning a lookup in another table into a join that
        # first reads every match there (orders by a common customer name: 19k users, 100+
        # ms); tested row by row, the window's few thousand rows cost a few index probes each
        search = f"EXISTS (SELECT 1 WHERE {search} OFFSET 0)"
    rows = await conn.fetch(
        f"SELECT {select} FROM ({window}) AS t WHERE {search} {order} LIMIT {query.limit + 1}",
        *args,
    )
    return (list(rows) if len(rows) > query.limit else None), len(rows)


# Reading one match through a trigram index and its heap page costs about as much as reading
# this many rows in list order (users, 1M rows: 2,095 matches collected in 6 ms, 41,600 rows
# read in order in 42 ms to find the first 51 of them)
MATCH_COST = 3


def _collect_matches(query: ListQuery, found: int) -> bool:
    """After the window held only `found` matches: whether collecting every match through
    the search index costs less than reading on in the list's order for a full page. The
    window's own density says how many matches there are, where the planner cannot."""
    if not query.table.search.indexed:
        return False
    rows = max(query.table.info.estimated_rows, SEARCH_WINDOW)
    matches = max(found, 1) * rows / SEARCH_WINDOW
    in_order = (query.limit + 1) * SEARCH_WINDOW / max(found, 1)
    return MATCH_COST * matches < in_order


async def _offset_page(
    conn: asyncpg.Connection, query: ListQuery, select: str, where: str, args: list[object]
) -> Page:
    limit = min(query.limit, OFFSET_CAP - query.offset)
    sql = (
        f"SELECT {select} FROM {query.table.qualified} AS t {where}"
        f" LIMIT {limit + 1} OFFSET {query.offset}"
    )
    rows = await conn.fetch(sql, *args) if limit > 0 else []
    more = len(rows) > limit
    end = query.offset + min(len(rows), limit)
    capped = more and end >= OFFSET_CAP
    return Page(
        rows=list(rows[:limit]),
        next_offset=end if more and not capped else None,
        prev_offset=max(0, query.offset - query.limit) if query.offset else None,
        capped=capped or (end >= OFFSET_CAP and query.offset > 0),
    )


# ---- totals


@dataclass(frozen=True)
class Total:
    value: int
    exact: bool
    planned: float = -1.0  # the planner's estimate of matching rows (filtered lists)
    at_least: bool = False  # `value` rows were seen and there are more; the estimate was wrong


class RowEstimates:
    """Unfiltered row estimates by table, reused for a few seconds (pg_class.reltuples only
    moves on VACUUM and ANALYZE). One per app, never shared across databases."""

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
    state = request.app.state
    estimates: RowEstimates | None = getattr(state, "row_estimates", None)
    if estimates is None:
        estimates = state.row_estimates = RowEstimates()
    return estimates


async def _planned_rows(conn: asyncpg.Connection, query: ListQuery) -> float:
    where, _, args = query.filter_sql()
    plan = await conn.fetchval(
        f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {query.table.qualified} AS t {where}", *args
    )
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


async def estimate_total(
    conn: asyncpg.Connection, query: ListQuery, estimates: RowEstimates | None = None
) -> Total:
    """The planner's estimate of the rows the list shows (see `settle_total`)."""
    table = query.table
    if query.is_filtered:
        estimate = await _planned_rows(conn, query)
    else:
        cached = estimates.get(table.qualified) if estimates is not None else None
        if cached is None:
            cached = await conn.fetchval(
                "SELECT reltuples FROM pg_class WHERE oid = $1", table.info.oid
            )
            if cached is None or cached < 0:  # never vacuumed or analyzed
                cached = await _planned_rows(conn, query)
            if estimates is not None:
                estimates.put(table.qualified, float(cached))
        estimate = float(cached)
    return Total(int(estimate), False, estimate)


async def settle_total(
    conn: asyncpg.Connection, query: ListQuery, total: Total, page: Page
) -> Total:
    """The total to show once the page is known: exact when the page itself says it (a first
    page with nothing after it) or when the estimate is small enough to count. A full page
    the estimate cannot be trusted for says "more than" what it shows, the count one click
    away: an estimate below a full page is wrong, and a text search on a big table (or one
    its declaration calls unpredictable) may match anything, where counting means reading
    every match."""
    first = query.after is None and query.before is None and not query.offset and not query.last
    full = page.next_cursor is not None or page.next_offset is not None
    if first and not full:
        return Total(len(page.rows), True, total.planned)
    if total.planned > SMALL_TABLE:
        return total
    if full and (total.planned < len(page.rows) or _unpredictable(query)):
        return Total(len(page.rows), False, total.planned, at_least=True)
    exact = await exact_total(conn, query)
    if exact is None:
        return total
    return Total(exact, True, total.planned)


def _unpredictable(query: ListQuery) -> bool:
    if not query.q or query.table.search.mode == "exact":
        return False
    declared = query.table.search.declared
    in_order_first = declared is not None and declared.in_order_first
    return in_order_first or query.table.info.estimated_rows >= WINDOW_MIN_TABLE


async def exact_total(conn: asyncpg.Connection, query: ListQuery) -> int | None:
    """count(*) of the filtered rows, or None when it took longer than COUNT_TIMEOUT."""
    where, _, args = query.filter_sql()
    try:
        async with conn.transaction(readonly=True):
            await conn.execute(f"SET LOCAL statement_timeout = '{COUNT_TIMEOUT}'")
            value: int = await conn.fetchval(
                f"SELECT count(*) FROM {query.table.qualified} AS t {where}", *args
            )
            return value
    except asyncpg.QueryCanceledError:
        return None


# ---- one record


async def get(
    conn: asyncpg.Connection,
    table: Table,
    key: Sequence[Any],
    select: str,
    *,
    lock: bool = False,
) -> asyncpg.Record | None:
    suffix = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(
        f"SELECT {select} FROM {table.qualified} AS t WHERE {table.key_condition(1, 't')}{suffix}",
        *key,
    )


# ---- references


@dataclass(frozen=True)
class Related:
    """The records of another table that reference one record."""

    table: Table
    key: ForeignKey
    column: Column
    rows: Sequence[asyncpg.Record]
    more: bool
    list_url: str | None  # the other table's list filtered to this record


RELATED_ROWS = 10


async def related(
    conn: asyncpg.Connection,
    target: Table,
    row: Any,
    tables: Iterable[Table],
    select_for: Any,
    *,
    limit: int = RELATED_ROWS,
) -> list[Related]:
    """For every single-column foreign key into `target`, the first rows pointing at `row`."""
    found = []
    for other in tables:
        if not other.keyed:
            continue
        for key in other.info.foreign_keys:
            if (key.ref_schema, key.ref_table) != (target.info.schema, target.info.name):
                continue
            if len(key.columns) != 1 or key.ref_columns[0] not in row:
                continue
            column = other.by_name[key.columns[0]]
            value = row[key.ref_columns[0]]
            order = cursors.order_by(other, (SortKey(other.primary_key[0]),), ascending=False)
            rows = await conn.fetch(
                f"SELECT {select_for(other)} FROM {other.qualified} AS t"
                f" WHERE t.{column.quoted} = $1 {order} LIMIT {limit + 1}",
                value,
            )
            param = other.filter_param(column.name)
            url = None
            if param is not None:
                url = f"{other.url}?{urlencode({param: str(value)})}"
            found.append(Related(other, key, column, rows[:limit], len(rows) > limit, url))
    return found


async def reference_count(
    conn: asyncpg.Connection, related_list: Sequence[Related], row: Any, *, cap: int = 10_000
) -> list[tuple[Related, int]]:
    """How many rows of each related table point at `row` (counted up to `cap`)."""
    counts = []
    for item in related_list:
        value = row[item.key.ref_columns[0]]
        count = await conn.fetchval(
            f"SELECT count(*) FROM (SELECT 1 FROM {item.table.qualified}"
            f" WHERE {item.column.quoted} = $1 LIMIT {cap}) AS r",
            value,
        )
        counts.append((item, count))
    return counts


# ---- lookups (autocomplete)


async def lookup(
    conn: asyncpg.Connection, table: Table, text: str, *, limit: int = 10
) -> list[asyncpg.Record]:
    """Records matching `text` by the table's own search (its indexes decide how), for
    reference fields: each with `key` and `label`."""
    query = replace(ListQuery.default(table), q=text, limit=limit)
    key = table.primary_key[0]
    label = table.label_column or key
    select = (
        f"{select_list(table, [], {})}, t.{key.quoted} AS __key, t.{label.quoted}::text AS __label"
    )
    page = await fetch_page(conn, query, select)
    return list(page.rows)
