"""HTTP for the users list: search, filters, sort, pages, totals, inline edit, bulk actions."""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from admin import audit, db, user_forms, users
from admin.access import client_ip, current_staff
from admin.htmx import redirect, render
from admin.listing import InvalidQuery, bulk_ids, parse_id, path_id, row_estimates
from admin.templating import templates
from admin.users import UserQuery


async def load(conn: asyncpg.Connection, user_id: int) -> asyncpg.Record:
    row = await users.get(conn, user_id)
    if row is None:
        raise HTTPException(404, f"There is no user with id {user_id}.")
    return row


def parse_query(request: Request) -> UserQuery:
    try:
        return UserQuery.from_params(request.query_params)
    except InvalidQuery as exc:
        raise HTTPException(400, str(exc)) from None


async def users_list(request: Request) -> Response:
    try:
        query = UserQuery.from_params(request.query_params)
    except InvalidQuery as exc:
        context = {"query": UserQuery(), "page": None, "total": None, "error": str(exc)}
        return render(
            request, "users/index.html", "users/_users_table.html", context, status_code=400
        )
    async with db.connection(request) as conn:
        page = await users.list_page(conn, query)
        total = await users.total(conn, query, row_estimates(request))
    context = {"query": query, "page": page, "total": total, "error": None}
    return render(request, "users/index.html", "users/_users_table.html", context)


async def users_count(request: Request) -> Response:
    query = parse_query(request)
    async with db.connection(request) as conn:
        count = await users.exact_count(conn, query)
    return templates.TemplateResponse(request, "_exact_count.html", {"count": count, "exact": True})


async def user_row(request: Request) -> Response:
    async with db.connection(request) as conn:
        row = await load(conn, path_id(request))
    return templates.TemplateResponse(request, "users/_user_row.html", {"user": row})


async def user_row_edit(request: Request) -> Response:
    async with db.connection(request) as conn:
        row = await load(conn, path_id(request))
    context = {"user": row, "values": dict(row), "errors": {}, "conflict": None}
    return templates.TemplateResponse(request, "users/_user_row_edit.html", context)


async def user_row_save(request: Request) -> Response:
    """Inline save: the plain row on success, the edit row with errors (422) or conflict (409)."""
    user_id = path_id(request)
    form = await request.form()
    status, context = await save(request, user_id, form)
    if status == 200:
        return templates.TemplateResponse(
            request, "users/_user_row.html", {"user": context["user"]}
        )
    return templates.TemplateResponse(
        request, "users/_user_row_edit.html", context, status_code=status
    )


def parse_version(raw: Any) -> int:
    text = str(raw or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise HTTPException(400, "The form is missing the version of the row it was read at.")
    return int(text)


async def save(request: Request, user_id: int, form: Any) -> tuple[int, dict[str, Any]]:
    """Validate and update with the version check; (status, template context)."""
    version = parse_version(form.get("version"))
    parsed = user_forms.parse(form)
    async with db.connection(request) as conn:
        current = await load(conn, user_id)
        base = {"user": current, "values": parsed.values, "errors": parsed.errors}
        if not parsed.valid:
            return 422, {**base, "version": version, "conflict": None}
        try:
            async with conn.transaction():
                updated = await users.update(conn, user_id, version, parsed.values)
                if updated is not None:
                    await audit.record(
                        conn,
                        staff=current_staff(request),
                        action="update",
                        resource="users",
                        resource_id=user_id,
                        before=users.snapshot(current),
                        after=users.snapshot(updated),
                        ip=client_ip(request),
                    )
        except asyncpg.IntegrityConstraintViolationError as exc:
            errors = user_forms.constraint_errors(exc)
            return 422, {**base, "errors": errors, "version": version, "conflict": None}
        if updated is not None:
            return 200, {"user": updated}
        latest = await load(conn, user_id)
    conflict = user_forms.changed_fields(parsed.values, dict(latest))
    return 409, {**base, "user": latest, "version": latest["version"], "conflict": conflict}


async def validate_field(request: Request) -> Response:
    """Inline check as a field is left: returns the field's error slot, empty when fine."""
    form = await request.form()
    name = str(form.get("field") or request.query_params.get("field", ""))
    if name not in ("username", "email", "full_name"):
        raise HTTPException(400, "Unknown field to check.")
    raw_id = str(form.get("user_id", "")).strip()
    try:
        user_id = parse_id(raw_id) if raw_id else None
    except InvalidQuery as exc:
        raise HTTPException(400, str(exc)) from None
    async with db.connection(request) as conn:
        message = await user_forms.field_error(conn, name, str(form.get(name, "")), user_id=user_id)
    return templates.TemplateResponse(
        request, "_field_error.html", {"field": name, "message": message}
    )


BULK_ACTIONS = {"activate": "Activate", "deactivate": "Deactivate", "delete": "Delete"}


def _bulk_ids(form: Any) -> list[int] | None:
    return bulk_ids(form, "user")


async def users_bulk(request: Request) -> Response:
    """Confirm step first (a page listing what will change); with confirm=yes, do it."""
    form = await request.form()
    action = str(form.get("action", ""))
    if action not in BULK_ACTIONS:
        raise HTTPException(400, "Choose a bulk action: activate, deactivate or delete.")
    try:
        query = UserQuery.from_params({k: str(form.get(k, "")) for k in ("q", "active")})
    except InvalidQuery as exc:
        raise HTTPException(400, str(exc)) from None
    ids = _bulk_ids(form)
    async with db.connection(request) as conn:
        if form.get("confirm") != "yes":
            count = await users.count_targets(conn, query, ids)
            context = {
                "action": action,
                "label": BULK_ACTIONS[action],
                "query": query,
                "ids": ids,
                "count": count,
            }
            return templates.TemplateResponse(request, "users/bulk_confirm.html", context)
        try:
            async with conn.transaction():
                changed = await _apply_bulk(request, conn, action, query, ids)
        except (asyncpg.ForeignKeyViolationError, asyncpg.RestrictViolationError):
            request.state.session.flash(
                "Nothing was deleted: some of these users have orders, and their order "
                "history must be kept. Delete or reassign those orders first.",
                "error",
            )
            return redirect(request, _list_url(query))
    request.state.session.flash(f"{BULK_ACTIONS[action]}: {changed} user(s) changed.", "success")
    return redirect(request, _list_url(query))


async def _apply_bulk(
    request: Request, conn: asyncpg.Connection, action: str, query: UserQuery, ids: Any
) -> int:
    staff, ip = current_staff(request), client_ip(request)
    if action == "delete":
        rows = await users.bulk_delete(conn, query, ids)
        entries = [(r["id"], users.snapshot(r), None) for r in rows]
    else:
        entries = await users.bulk_set_active(conn, query, ids, action == "activate")
    await audit.record_many(
        conn, staff=staff, action=f"bulk_{action}", resource="users", entries=entries, ip=ip
    )
    return len(entries)


def _list_url(query: UserQuery) -> str:
    from urllib.parse import urlencode

    params = query.params()
    return "/users" + (f"?{urlencode(params)}" if params else "")


def empty() -> Response:
    return HTMLResponse("")
