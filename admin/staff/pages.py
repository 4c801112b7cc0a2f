"""/staff (admins only): list, create, deactivate/reactivate, change role, reset password.

Every write runs in one transaction with its audit entry (before/after, never the hash).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin import audit, db
from admin.access import client_ip, current_staff
from admin.ids import InvalidId, parse_id
from admin.staff import table as staff_table
from admin.staff.passwords import hash_password_async
from admin.staff.table import LastActiveAdmin, StaffMember, StaffNotFound
from admin.web.forms import text_field
from admin.web.htmx import redirect, render

LAST_ADMIN = "{username} is the last active admin: make someone else an admin first."


def _staff_id(request: Request) -> int:
    try:
        return parse_id(request.path_params["staff_id"])
    except InvalidId:
        raise HTTPException(404, "There is no such staff member.") from None


async def _page(
    request: Request,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    row_error: tuple[int, str] | None = None,
) -> Response:
    async with db.connection(request) as conn:
        members = await staff_table.list_all(conn)
    context: dict[str, Any] = {
        "members": members,
        "roles": staff_table.ROLES,
        "min_password_length": staff_table.MIN_PASSWORD_LENGTH,
        "errors": errors or {},
        "values": values or {"username": "", "role": "staff"},
        "row_error": row_error,
    }
    return render(
        request, "staff/index.html", "staff/_table.html", context, status_code=status_code
    )


async def staff_list(request: Request) -> Response:
    return await _page(request)


async def staff_create(request: Request) -> Response:
    form = await request.form()
    username = text_field(form, "username").strip()
    password = text_field(form, "password")
    role = text_field(form, "role") or "staff"
    errors = {
        field: problem
        for field, problem in (
            ("username", staff_table.username_problem(username)),
            ("password", staff_table.password_problem(password)),
            ("role", staff_table.role_problem(role)),
        )
        if problem
    }
    values = {"username": username[:50], "role": role if role in staff_table.ROLES else "staff"}
    if errors:
        return await _page(request, status_code=422, errors=errors, values=values)
    admin = current_staff(request)
    try:
        async with db.connection(request) as conn, conn.transaction():
            member = await staff_table.create(conn, username, password, role)
            await audit.record(
                conn,
                staff=admin,
                action="create",
                resource="staff",
                resource_id=member.id,
                after=staff_table.public_fields(member),
                ip=client_ip(request),
            )
    except asyncpg.UniqueViolationError:
        errors = {"username": f"The username {username} is taken."}
        return await _page(request, status_code=409, errors=errors, values=values)
    request.state.session.flash(f"Created {role} {username}.", "success")
    return redirect(request, "/staff")


Change = Callable[[asyncpg.Connection, int], Awaitable[tuple[StaffMember, StaffMember]]]


async def _apply(request: Request, action: str, change: Change) -> Response:
    """Run `change(conn, staff_id)` -> (before, after) with its audit entry, one transaction."""
    staff_id = _staff_id(request)
    admin = current_staff(request)
    try:
        async with db.connection(request) as conn, conn.transaction():
            before, after = await change(conn, staff_id)
            await audit.record(
                conn,
                staff=admin,
                action=action,
                resource="staff",
                resource_id=staff_id,
                before=staff_table.public_fields(before),
                after=staff_table.public_fields(after),
                ip=client_ip(request),
            )
    except StaffNotFound:
        raise HTTPException(404, "There is no such staff member.") from None
    except LastActiveAdmin as exc:
        return await _page(
            request, status_code=409, row_error=(staff_id, LAST_ADMIN.format(username=exc))
        )
    if after.id == admin.id and after.session_version != admin.session_version:
        # the admin changed their own account: this session stays, the others end
        request.state.session.follow_version(after.session_version)
    request.state.session.flash(_done_message(action, after), "success")
    return redirect(request, "/staff")


def _done_message(action: str, member: StaffMember) -> str:
    if action == "password_reset":
        return f"New password set for {member.username}; their sessions have ended."
    if action == "role_change":
        return f"{member.username} is now {member.role}."
    state = "active" if member.is_active else "deactivated; their sessions have ended"
    return f"{member.username} is {state}."


async def staff_set_active(request: Request) -> Response:
    form = await request.form()
    value = text_field(form, "active")
    if value not in {"true", "false"}:
        raise HTTPException(400, "The field active must be true or false.")
    active = value == "true"

    async def change(conn: asyncpg.Connection, staff_id: int) -> tuple[StaffMember, StaffMember]:
        return await staff_table.set_active(conn, staff_id, active)

    return await _apply(request, "reactivate" if active else "deactivate", change)


async def staff_set_role(request: Request) -> Response:
    form = await request.form()
    role = text_field(form, "role")
    problem = staff_table.role_problem(role)
    if problem:
        return await _page(request, status_code=422, row_error=(_staff_id(request), problem))

    async def change(conn: asyncpg.Connection, staff_id: int) -> tuple[StaffMember, StaffMember]:
        return await staff_table.set_role(conn, staff_id, role)

    return await _apply(request, "role_change", change)


async def staff_reset_password(request: Request) -> Response:
    form = await request.form()
    password = text_field(form, "password")
    problem = staff_table.password_problem(password)
    if problem:
        return await _page(request, status_code=422, row_error=(_staff_id(request), problem))
    new_hash = await hash_password_async(password)

    async def change(conn: asyncpg.Connection, staff_id: int) -> tuple[StaffMember, StaffMember]:
        return await staff_table.set_password(conn, staff_id, new_hash)

    return await _apply(request, "password_reset", change)
