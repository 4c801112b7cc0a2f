"""Login and logout."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from admin import audit, db
from admin import staff as staff_table
from admin.access import client_ip, current_staff
from admin.htmx import redirect, render
from admin.passwords import hash_password, needs_rehash, verify_password
from admin.staff import StaffMember

MAX_FIELD_LENGTH = 200
LOGIN_FAILED = "Wrong username or password."


def safe_next(target: str | None) -> str:
    """Only a local path: never another host, never a scheme-relative //host."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return "/"
    return target


async def login_page(request: Request) -> Response:
    if request.state.staff is not None:
        return redirect(request, safe_next(request.query_params.get("next")))
    context = {"next": safe_next(request.query_params.get("next")), "username": "", "error": None}
    return render(request, "login.html", "_login_form.html", context)


async def login(request: Request) -> Response:
    form = await request.form()
    username = str(form.get("username", "")).strip().lower()
    password = str(form.get("password", ""))
    next_url = safe_next(str(form.get("next", "")) or request.query_params.get("next"))

    def refuse(message: str, status: int) -> Response:
        context = {"next": next_url, "username": username[:MAX_FIELD_LENGTH], "error": message}
        return render(request, "login.html", "_login_form.html", context, status_code=status)

    if not username or not password:
        return refuse("Enter your username and password.", 422)
    if len(username) > MAX_FIELD_LENGTH or len(password) > 1024:
        return refuse(LOGIN_FAILED, 401)

    async with db.connection(request) as conn:
        row = await staff_table.get_for_login(conn, username)
        ok = verify_password(row["password_hash"] if row else None, password)
        if not ok or row is None or not row["is_active"]:
            async with conn.transaction():
                await audit.record(
                    conn,
                    staff=None,
                    staff_username=username[:MAX_FIELD_LENGTH],
                    action="login_failed",
                    resource="session",
                    ip=client_ip(request),
                )
            return refuse(LOGIN_FAILED, 401)
        member = StaffMember.from_record(row)
        async with conn.transaction():
            new_hash = hash_password(password) if needs_rehash(row["password_hash"]) else None
            await staff_table.record_login(conn, member.id, new_hash)
            await audit.record(
                conn, staff=member, action="login", resource="session", ip=client_ip(request)
            )
    request.state.session.log_in(member.id, member.session_version)
    return redirect(request, next_url)


async def logout(request: Request) -> Response:
    member = current_staff(request)
    async with db.connection(request) as conn, conn.transaction():
        await audit.record(
            conn, staff=member, action="logout", resource="session", ip=client_ip(request)
        )
    request.state.session.log_out()
    request.state.session.flash("You have been logged out.")
    return redirect(request, "/login")
