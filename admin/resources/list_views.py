"""HTTP for a table's list: search, filters, sort, keyset pages, totals, the filter builder
and lookups for reference fields (bulk actions: admin/resources/bulk_views.py)."""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from admin import db, replica
from admin.resources import (
    bulk_undo,
    column_filters,
    cursors,
    list_markup,
    positions,
    reads,
)
from admin.resources.carried import Carried
from admin.resources.model import Table
from admin.resources.query import InvalidQuery, ListQuery
from admin.resources.resolve import render
from admin.web.htmx import header_url, wants_fragment
from admin.web.templating import templates

LOOKUP_ROWS = 10


def parse_query(table: Table, params: Any) -> ListQuery:
    try:
        return ListQuery.from_params(table, params)
    except InvalidQuery as exc:
        raise HTTPException(400, str(exc)) from None


async def list_page(request: Request, table: Table) -> Response:
    try:
        query = ListQuery.from_params(table, request.query_params)
    except InvalidQuery as exc:
        context = {
            "query": ListQuery.default(table),
            "page": None,
            "total": None,
            "error": str(exc),
            "position": None,
            "sizes": positions.PAGE_SIZES,
            "column_slow": column_filters.slow,
        }
        return render(request, table, "index.html", "_table.html", context, status_code=400)
    async with replica.read_connection(request) as conn:
        total = await reads.estimate_total(conn, query, reads.row_estimates(request))
        dense = reads.dense_search(query, total.planned)
        carried = Carried(table, query.columns, query.state_url(), query.sort_columns)
        page = await reads.fetch_page(conn, query, carried.select, dense=dense)
        total = await reads.settle_total(conn, query, total, page)
    context = {
        "query": query,
        "page": page,
        "total": total,
        "error": None,
        "position": positions.position(query, page, total),
        "sizes": positions.page_sizes(query.limit),
        "undo": bulk_undo.offered(request, table),
        "column_slow": column_filters.slow,
        "markup": list_markup,
        **carried.context(),
    }
    # the address bar shows the list's whole state in one spelling, whatever sent it
    headers = {"HX-Push-Url": header_url(query.state_url())} if wants_fragment(request) else None
    return render(request, table, "index.html", "_table.html", context, headers=headers)


async def filter_builder(request: Request, table: Table) -> Response:
    """The filter builder's controls (fetched when opened, not with every list page)."""
    query = parse_query(table, request.query_params)
    columns = [
        (
            c,
            column_filters.ops_for(c),
            [op for op in column_filters.ops_for(c) if column_filters.indexed(table, c, op)],
            column_filters.input_type(c),
        )
        for c in column_filters.filterable(table)
    ]
    context = {
        "query": query,
        "columns": columns,
        "ops": column_filters.OPS,
        "big": table.info.estimated_rows > column_filters.BIG_TABLE,
    }
    return render(request, table, "_filter_builder.html", None, context)


async def column_chooser(request: Request, table: Table) -> Response:
    """The column chooser's boxes (fetched when opened)."""
    query = parse_query(table, request.query_params)
    shown = {c.name for c in (query.columns or table.list_columns)}
    context = {"query": query, "shown": shown}
    return render(request, table, "_column_chooser.html", None, context)


async def count(request: Request, table: Table) -> Response:
    query = parse_query(table, request.query_params)
    async with replica.read_connection(request) as conn:
        value = await reads.exact_total(conn, query)
    return templates.TemplateResponse(request, "_exact_count.html", {"count": value})


MAX_MATCH_KEYS = 200


async def matching(request: Request, table: Table) -> Response:
    """Which of the `key`s (URL key segments) belong in this list view: they pass its
    search and filters and, on a page reached by a cursor, sort after that cursor; `end`
    (the page's next cursor) bounds the window from below. Live lists ask this for new rows,
    so "3 new" counts only rows this view would show."""
    if not table.keyed:
        raise HTTPException(400, "This table has no primary key: its rows cannot be matched.")
    query = parse_query(table, request.query_params)
    raw = request.query_params.getlist("key")
    if not raw or len(raw) > MAX_MATCH_KEYS:
        raise HTTPException(400, f"Name between 1 and {MAX_MATCH_KEYS} keys (key=...).")
    try:
        wanted = [table.parse_key(k) for k in raw]
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    search, conditions, args = query.conditions()
    if search:
        conditions.insert(0, search)
    window = [(query.after, not query.descending)]
    end_raw = request.query_params.get("end", "").strip()
    if end_raw and query.sort is not None and query.before is None:
        try:
            end = cursors.decode(end_raw, table, query.sort_keys)
        except cursors.InvalidQuery as exc:
            raise HTTPException(400, str(exc)) from None
        window.append((end, query.descending))
    for cursor, ascending in window:
        if cursor is not None and query.sort is not None:
            condition, extra = cursors.condition(
                table, query.sort_keys, cursor, ascending=ascending, first_param=len(args) + 1
            )
            conditions.append(condition)
            args = [*args, *extra]
    alternatives = []
    for key in wanted:
        alternatives.append(f"({table.key_condition(len(args) + 1, 't')})")
        args = [*args, *key]
    conditions.append("(" + " OR ".join(alternatives) + ")")
    sql = (
        f"SELECT {table.key_columns_sql} FROM {table.qualified} AS t"
        f" WHERE {' AND '.join(conditions)}"
    )
    async with replica.read_connection(request) as conn:
        rows = await conn.fetch(sql, *args)
    found = {tuple(row[c.name] for c in table.primary_key) for row in rows}
    return JSONResponse({"keys": [k for k, key in zip(raw, wanted, strict=True) if key in found]})


async def lookup(request: Request, table: Table) -> Response:
    """Autocomplete for a field referring to `table`: a few matching records."""
    text = request.query_params.get("q", "").strip()
    try:
        parse_query(table, {"q": text})
    except HTTPException:
        text = ""
    rows: list[asyncpg.Record] = []
    if text and table.keyed:
        async with db.connection(request) as conn:
            rows = await reads.lookup(conn, table, text, limit=LOOKUP_ROWS)
    field = request.query_params.get("field", "")[:80]
    context = {"rows": rows, "field": field, "text": text}
    return render(request, table, "_lookup.html", None, context)
