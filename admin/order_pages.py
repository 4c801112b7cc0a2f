"""HTTP for one order: show with its event history, change status, edit total, delete."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from admin import audit, db, orders
from admin.access import client_ip, current_staff
from admin.htmx import is_htmx, redirect, render
from admin.listing import path_id
from admin.order_views import load
from admin.orders import STATUSES
from admin.templating import templates
from admin.user_views import parse_version

MAX_TOTAL = Decimal("9999999999.99")


def parse_total(raw: str) -> tuple[Decimal | None, str | None]:
    text = raw.strip().replace(",", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None, "Enter an amount like 19.99."
    if not value.is_finite() or value < 0 or value > MAX_TOTAL:
        return None, f"The total must be between 0 and {MAX_TOTAL:,}."
    if value != value.quantize(Decimal("0.01")):
        return None, "At most two decimal places."
    return value, None


async def _page(
    request: Request, row: asyncpg.Record, conn: asyncpg.Connection, **extra: Any
) -> dict[str, Any]:
    history = await orders.events(conn, row["id"])
    base = {
        "order": row,
        "events": history,
        "statuses": STATUSES,
        "errors": {},
        "conflict": None,
        "values": {"status": row["status"], "total": str(row["total"])},
    }
    return {**base, **extra}


async def show_order(request: Request) -> Response:
    async with db.connection(request) as conn:
        row = await load(conn, path_id(request))
        context = await _page(request, row, conn)
    return templates.TemplateResponse(request, "orders/show.html", context)


async def edit_order(request: Request) -> Response:
    async with db.connection(request) as conn:
        row = await load(conn, path_id(request))
        context = await _page(request, row, conn)
    return render(request, "orders/edit.html", "orders/_order_form.html", context)


async def _save(request: Request, *, status_only: bool) -> Response:
    """Version-checked update: 303 when saved, 422 with errors, 409 showing both sides."""
    order_id = path_id(request)
    form = await request.form()
    version = parse_version(form.get("version"))
    template = (
        ("orders/show.html", "orders/_status_form.html")
        if status_only
        else ("orders/edit.html", "orders/_order_form.html")
    )
    async with db.connection(request) as conn:
        current = await load(conn, order_id)
        status = str(form.get("status", current["status"]))
        errors: dict[str, str] = {}
        if status not in STATUSES:
            errors["status"] = f"Choose one of: {', '.join(STATUSES)}."
        if status_only:  # the stored total stays as it is, even one the form would refuse (NaN)
            raw_total, total, total_error = str(current["total"]), current["total"], None
        else:
            raw_total = str(form.get("total", current["total"]))
            total, total_error = parse_total(raw_total)
        if total_error:
            errors["total"] = total_error
        values = {"status": status, "total": raw_total}
        if errors or total is None:
            context = await _page(
                request, current, conn, errors=errors, values=values, version=version
            )
            return render(request, *template, context, status_code=422)
        async with conn.transaction():
            updated = await orders.update(conn, order_id, version, status=status, total=total)
            if updated is not None:
                await audit.record(
                    conn,
                    staff=current_staff(request),
                    action="set_status" if status_only else "update",
                    resource="orders",
                    resource_id=order_id,
                    before=orders.snapshot(current),
                    after=orders.snapshot(updated),
                    ip=client_ip(request),
                )
        if updated is None:
            latest = await load(conn, order_id)
            conflict = [
                {
                    "label": "Status",
                    "mine": status,
                    "theirs": latest["status"],
                    "differs": status != latest["status"],
                },
                {
                    "label": "Total",
                    "mine": raw_total,
                    "theirs": str(latest["total"]),
                    "differs": total != latest["total"],
                },
            ]
            context = await _page(
                request, latest, conn, values=values, conflict=conflict, version=latest["version"]
            )
            return render(request, *template, context, status_code=409)
    request.state.session.flash(f"Order {order_id} saved.", "success")
    return redirect(request, f"/orders/{order_id}")


async def update_order(request: Request) -> Response:
    return await _save(request, status_only=False)


async def set_status(request: Request) -> Response:
    return await _save(request, status_only=True)


async def confirm_delete(request: Request) -> Response:
    async with db.connection(request) as conn:
        row = await load(conn, path_id(request))
    return templates.TemplateResponse(request, "orders/confirm_delete.html", {"order": row})


async def _delete(request: Request, version: int | None) -> Response | None:
    order_id = path_id(request)
    async with db.connection(request) as conn:
        await load(conn, order_id)
        async with conn.transaction():
            deleted = await orders.delete(conn, order_id, version)
            if deleted is not None:
                await audit.record(
                    conn,
                    staff=current_staff(request),
                    action="delete",
                    resource="orders",
                    resource_id=order_id,
                    before=orders.snapshot(deleted),
                    ip=client_ip(request),
                )
        if deleted is None:
            latest = await load(conn, order_id)
            message = "Someone changed this order since you opened it; review it before deleting."
            return templates.TemplateResponse(
                request,
                "orders/confirm_delete.html",
                {"order": latest, "error": message},
                status_code=409,
            )
    return None


async def delete_order(request: Request) -> Response:
    form = await request.form()
    version = parse_version(form.get("version")) if form.get("version") else None
    refused = await _delete(request, version)
    if refused is not None:
        return refused
    request.state.session.flash(f"Order {request.path_params['id']} deleted.", "success")
    return redirect(request, "/orders")


async def delete_order_htmx(request: Request) -> Response:
    raw = request.query_params.get("version")
    refused = await _delete(request, parse_version(raw) if raw else None)
    if refused is not None:
        return refused
    if is_htmx(request) and request.headers.get("hx-target", "").startswith("order-"):
        return HTMLResponse("")
    return redirect(request, "/orders")
