"""HTTP for a table's list: search, filters, sort, keyset pages, totals, lookups for
reference fields, and bulk actions (confirm first, then one statement)."""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from admin import audit, db, live_actor, replica
from admin.access import client_ip, current_staff
from admin.htmx import redirect
from admin.resources import cursors, reads, store
from admin.resources.model import Table
from admin.resources.query import InvalidQuery, ListQuery
from admin.resources.resolve import render, require
from admin.resources.spec import BulkAction
from admin.templating import templates

MAX_BULK_SELECTED = 10_000
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
        }
        return render(request, table, "index.html", "_table.html", context, status_code=400)
    async with replica.read_connection(request) as conn:
        total = await reads.estimate_total(conn, query, reads.row_estimates(request))
        dense = reads.dense_search(query, total.planned)
        page = await reads.fetch_page(conn, query, table.list_select, dense=dense)
        total = await reads.settle_total(conn, query, total, page)
    context = {"query": query, "page": page, "total": total, "error": None}
    return render(request, table, "index.html", "_table.html", context)


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
            end = cursors.decode(end_raw, table, query.sort)
        except cursors.InvalidQuery as exc:
            raise HTTPException(400, str(exc)) from None
        window.append((end, query.descending))
    for cursor, ascending in window:
        if cursor is not None and query.sort is not None:
            condition, extra = cursors.condition(
                table, query.sort, cursor, ascending=ascending, first_param=len(args) + 1
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


def selected_keys(table: Table, form: Any) -> list[tuple[Any, ...]] | None:
    """The selected records of a bulk form, or None when it covers everything matching."""
    if form.get("scope") == "all":
        return None
    raw = form.getlist("ids")
    if len(raw) > MAX_BULK_SELECTED:
        raise HTTPException(
            400, f"Select at most {MAX_BULK_SELECTED:,} records, or 'all matching'."
        )
    try:
        found = [table.parse_key(str(v)) for v in raw]
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    if not found:
        raise HTTPException(400, f"Select at least one {table.label}, or choose 'all matching'.")
    return found


def _bulk_action(table: Table, form: Any) -> tuple[BulkAction, Any]:
    name = str(form.get("action", ""))
    action = next((a for a in table.bulk_actions if a.name == name), None)
    if action is None:
        names = ", ".join(a.name for a in table.bulk_actions) or "none"
        raise HTTPException(400, f"Choose a bulk action ({names}).")
    value = action.value
    if action.column is not None and value is None:
        column = table.by_name[action.column]
        value = str(form.get("value", ""))
        if value not in column.choices:
            raise HTTPException(
                400, f"Choose the new {column.label.lower()}: one of {', '.join(column.choices)}."
            )
    return action, value


async def bulk(request: Request, table: Table) -> Response:
    """Confirm step first (what will change, how many); with confirm=yes, do it."""
    form = await request.form()
    action, value = _bulk_action(table, form)
    require(request, table, action.permission)
    query = parse_query(table, {k: str(v) for k, v in form.items() if isinstance(v, str)})
    keys = selected_keys(table, form)
    target = store.target(table, query, keys)
    async with db.connection(request) as conn:
        if form.get("confirm") != "yes":
            count_ = await store.count_target(conn, target)
            context = {
                "action": action,
                "value": value,
                "query": query,
                "ids": None if keys is None else [table.encode_key(k) for k in keys],
                "count": count_,
            }
            return render(request, table, "bulk_confirm.html", None, context)
        try:
            async with conn.transaction():
                await live_actor.mark(request, conn)
                changed = await _apply(request, conn, table, action, value, target)
        except (asyncpg.ForeignKeyViolationError, asyncpg.RestrictViolationError) as exc:
            request.state.session.flash(
                f"Nothing was deleted: other records still refer to some of these {table.plural}"
                f" ({exc.detail or exc}). Remove or reassign those first.",
                "error",
            )
            return redirect(request, query.url())
    request.state.session.flash(f"{action.label}: {changed} {table.plural} changed.", "success")
    return redirect(request, query.url())


async def _apply(
    request: Request,
    conn: asyncpg.Connection,
    table: Table,
    action: BulkAction,
    value: Any,
    target: tuple[str, list[object]],
) -> int:
    if action.delete:
        rows = await store.bulk_delete(conn, table, target, table.detail_select)
        entries = [(table.key_of(r), store.snapshot(r), None) for r in rows]
    else:
        column = table.by_name[str(action.column)]
        entries = await store.bulk_set(conn, table, target, column, value)
    await audit.record_many(
        conn,
        staff=current_staff(request),
        action=f"bulk_{action.name}",
        resource=table.slug,
        entries=entries,  # type: ignore[arg-type]
        ip=client_ip(request),
    )
    return len(entries)
