"""HTTP for one user: create, show, edit (with the version check), delete with a confirm step."""

from __future__ import annotations

import asyncpg
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from admin import audit, db, user_forms, users
from admin.access import client_ip, current_staff
from admin.htmx import is_htmx, redirect, render
from admin.listing import path_id
from admin.templating import templates
from admin.user_views import load, parse_version, save

BLANK = {"username": "", "email": "", "full_name": "", "is_active": True}


def form_page(request: Request, context: dict[str, object], *, status_code: int = 200) -> Response:
    return render(
        request, "users/form.html", "users/_user_form.html", context, status_code=status_code
    )


async def new_user(request: Request) -> Response:
    return form_page(request, {"user": None, "values": BLANK, "errors": {}, "conflict": None})


async def create_user(request: Request) -> Response:
    parsed = user_forms.parse(await request.form())
    context: dict[str, object] = {
        "user": None,
        "values": parsed.values,
        "errors": parsed.errors,
        "conflict": None,
    }
    if not parsed.valid:
        return form_page(request, context, status_code=422)
    async with db.connection(request) as conn:
        try:
            async with conn.transaction():
                row = await users.create(conn, parsed.values)
                await audit.record(
                    conn,
                    staff=current_staff(request),
                    action="create",
                    resource="users",
                    resource_id=row["id"],
                    after=users.snapshot(row),
                    ip=client_ip(request),
                )
        except asyncpg.IntegrityConstraintViolationError as exc:
            context["errors"] = user_forms.constraint_errors(exc)
            return form_page(request, context, status_code=422)
    request.state.session.flash(f"User {row['username']} created.", "success")
    return redirect(request, f"/users/{row['id']}")


async def show_user(request: Request) -> Response:
    user_id = path_id(request)
    async with db.connection(request) as conn:
        row = await load(conn, user_id)
        orders = await users.order_count(conn, user_id)
    return templates.TemplateResponse(request, "users/show.html", {"user": row, "orders": orders})


async def edit_user(request: Request) -> Response:
    async with db.connection(request) as conn:
        row = await load(conn, path_id(request))
    context = {
        "user": row,
        "values": dict(row),
        "errors": {},
        "conflict": None,
        "version": row["version"],
    }
    return form_page(request, context)


async def update_user(request: Request) -> Response:
    user_id = path_id(request)
    status, context = await save(request, user_id, await request.form())
    if status == 200:
        request.state.session.flash(f"User {context['user']['username']} saved.", "success")
        return redirect(request, f"/users/{user_id}")
    return form_page(request, context, status_code=status)


async def confirm_delete(request: Request) -> Response:
    user_id = path_id(request)
    async with db.connection(request) as conn:
        row = await load(conn, user_id)
        orders = await users.order_count(conn, user_id)
    return templates.TemplateResponse(
        request, "users/confirm_delete.html", {"user": row, "orders": orders}
    )


async def _delete(request: Request, user_id: int, version: int | None) -> Response | None:
    """Delete and audit; a Response when refused, None when done."""
    async with db.connection(request) as conn:
        row = await load(conn, user_id)
        try:
            async with conn.transaction():
                deleted = await users.delete(conn, user_id, version)
                if deleted is not None:
                    await audit.record(
                        conn,
                        staff=current_staff(request),
                        action="delete",
                        resource="users",
                        resource_id=user_id,
                        before=users.snapshot(deleted),
                        ip=client_ip(request),
                    )
        except (asyncpg.ForeignKeyViolationError, asyncpg.RestrictViolationError):
            orders = await users.order_count(conn, user_id)
            message = (
                f"{row['username']} has {orders} order(s); a user with orders cannot be "
                "deleted, so their order history is kept. Deactivate the user instead."
            )
            return _refused(request, row, orders, message)
        if deleted is None:
            latest = await load(conn, user_id)
            message = "Someone changed this user since you opened it; review the change first."
            return _refused(request, latest, await users.order_count(conn, user_id), message)
    return None


def _refused(request: Request, row: asyncpg.Record, orders: int, message: str) -> Response:
    if is_htmx(request):
        return templates.TemplateResponse(
            request,
            "_error_message.html",
            {"message": message},
            status_code=409,
            headers={"HX-Retarget": "#flashes", "HX-Reswap": "innerHTML"},
        )
    return templates.TemplateResponse(
        request,
        "users/confirm_delete.html",
        {"user": row, "orders": orders, "error": message},
        status_code=409,
    )


async def delete_user(request: Request) -> Response:
    """The no-JS path: POST from the confirm page (carrying the version it showed)."""
    user_id = path_id(request)
    form = await request.form()
    version = parse_version(form.get("version")) if form.get("version") else None
    refused = await _delete(request, user_id, version)
    if refused is not None:
        return refused
    request.state.session.flash(f"User {user_id} deleted.", "success")
    return redirect(request, "/users")


async def delete_user_htmx(request: Request) -> Response:
    """hx-delete from the list (after hx-confirm): an empty 200 removes the row."""
    user_id = path_id(request)
    raw = request.query_params.get("version")
    version = parse_version(raw) if raw else None
    refused = await _delete(request, user_id, version)
    if refused is not None:
        return refused
    if request.headers.get("hx-target", "").startswith("user-"):
        return HTMLResponse("")
    return redirect(request, "/users")
