"""HTTP for the orders list (search, filters, sort, pages, totals) and bulk status changes."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin import audit, db, orders
from admin.access import client_ip, current_staff
from admin.htmx import redirect, render
from admin.listing import InvalidQuery, bulk_ids, row_estimates
from admin.orders import STATUSES, OrderQuery
from admin.templating import templates

FILTER_FIELDS = ("q", "status", "user", "created_from", "created_to")


async def load(conn: asyncpg.Connection, order_id: int) -> asyncpg.Record:
    row = await orders.get(conn, order_id)
    if row is None:
        raise HTTPException(404, f"There is no order with id {order_id}.")
    return row


async def orders_list(request: Request) -> Response:
    try:
        query = OrderQuery.from_params(request.query_params)
    except InvalidQuery as exc:
        context = {
            "query": OrderQuery(),
            "page": None,
            "total": None,
            "error": str(exc),
            "statuses": STATUSES,
        }
        return render(
            request, "orders/index.html", "orders/_orders_table.html", context, status_code=400
        )
    async with db.connection(request) as conn:
        page = await orders.list_page(conn, query)
        total = await orders.total(conn, query, row_estimates(request))
    context = {"query": query, "page": page, "total": total, "error": None, "statuses": STATUSES}
    return render(request, "orders/index.html", "orders/_orders_table.html", context)


async def orders_count(request: Request) -> Response:
    try:
        query = OrderQuery.from_params(request.query_params)
    except InvalidQuery as exc:
        raise HTTPException(400, str(exc)) from None
    async with db.connection(request) as conn:
        count = await orders.exact_count(conn, query)
    return templates.TemplateResponse(request, "_exact_count.html", {"count": count})


def _bulk_ids(form: Any) -> list[int] | None:
    return bulk_ids(form, "order")


def list_url(query: OrderQuery) -> str:
    params = query.params()
    return "/orders" + (f"?{urlencode(params)}" if params else "")


async def orders_bulk(request: Request) -> Response:
    """Set the status of the selected orders (or all matching): confirm first, then one UPDATE."""
    form = await request.form()
    status = str(form.get("status_to", ""))
    if status not in STATUSES:
        raise HTTPException(400, f"Choose the new status: one of {', '.join(STATUSES)}.")
    try:
        query = OrderQuery.from_params({k: str(form.get(k, "")) for k in FILTER_FIELDS})
    except InvalidQuery as exc:
        raise HTTPException(400, str(exc)) from None
    ids = _bulk_ids(form)
    async with db.connection(request) as conn:
        if form.get("confirm") != "yes":
            count = await orders.count_targets(conn, query, ids)
            context = {
                "status_to": status,
                "query": query,
                "ids": ids,
                "count": count,
                "back_url": list_url(query),
            }
            return templates.TemplateResponse(request, "orders/bulk_confirm.html", context)
        async with conn.transaction():
            entries = await orders.bulk_set_status(conn, query, ids, status)
            await audit.record_many(
                conn,
                staff=current_staff(request),
                action="bulk_set_status",
                resource="orders",
                entries=entries,
                ip=client_ip(request),
            )
    request.state.session.flash(f"Status set to {status} on {len(entries)} order(s).", "success")
    return redirect(request, list_url(query))
