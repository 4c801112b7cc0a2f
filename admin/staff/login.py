"""Login and logout.

A login is throttled before its password is looked at (see admin/staff/throttle.py), and an
unknown username costs the same argon2 verification and gets the same answer as a wrong
password, so neither the message nor the time tells which usernames exist. A failed login
is audited under the username typed only when such a member exists: what people type
there is sometimes their password.

"Log out" ends this session alone (its id is revoked, so a copy of the cookie is refused
too); "Log out everywhere" ends every session of the member.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from admin import audit, db
from admin.access import client_ip, current_staff
from admin.ops import metrics
from admin.staff import devices, revocations, throttle
from admin.staff import table as staff_table
from admin.staff.passwords import hash_password_async, needs_rehash, verify_password_async
from admin.staff.table import MAX_PASSWORD_LENGTH, StaffMember
from admin.web.forms import has_control_characters, text_field
from admin.web.htmx import redirect, render

MAX_USERNAME_LENGTH = 200
LOGIN_FAILED = "Wrong username or password."
THROTTLED = "Too many failed logins. Try again in {wait}."


def wait_in_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'' if seconds == 1 else 's'}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


def safe_next(target: str | None) -> str:
    """Only a local path: never another host, never a scheme-relative //host."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return "/"
    return target


async def login_page(request: Request) -> Response:
    if request.state.staff is not None:
        return redirect(request, safe_next(request.query_params.get("next")))
    context = {"next": safe_next(request.query_params.get("next")), "username": "", "error": None}
    return render(request, "login.html", "_login_form.html", context)


def _input_problem(username: str, password: str) -> str | None:
    if not username or not password:
        return "Enter your username and password."
    if len(username) > MAX_USERNAME_LENGTH or len(password) > MAX_PASSWORD_LENGTH:
        return "The username or password is too long."
    if has_control_characters(username):
        return "The username contains control characters."
    return None


async def login(request: Request) -> Response:
    form = await request.form()
    username = text_field(form, "username").strip().lower()
    password = text_field(form, "password")
    next_url = safe_next(text_field(form, "next") or request.query_params.get("next"))

    def refuse(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
        shown = username if len(username) <= MAX_USERNAME_LENGTH else ""
        context = {"next": next_url, "username": shown, "error": message}
        return render(
            request, "login.html", "_login_form.html", context, status_code=status, headers=headers
        )

    problem = _input_problem(username, password)
    if problem:
        return refuse(problem, 422)

    ip = client_ip(request)
    settings = request.app.state.settings
    device = devices.known_device(request, settings, username)
    async with db.connection(request) as conn:
        subject = throttle.subject(settings.secret_key, username)
        attempt = await throttle.begin_attempt(conn, subject, ip, device)
        if isinstance(attempt, throttle.Refusal):
            metrics.LOGIN_THROTTLED.inc()
            message = THROTTLED.format(wait=wait_in_words(attempt.retry_after))
            return refuse(message, 429, {"Retry-After": str(attempt.retry_after)})
        row = await staff_table.get_for_login(conn, username)
        ok = await verify_password_async(row["password_hash"] if row else None, password)
        if not ok or row is None or not row["is_active"]:
            metrics.LOGIN_FAILURES.inc()
            async with conn.transaction():
                await audit.record(
                    conn,
                    staff=None,
                    staff_username=row["username"] if row else None,
                    action="login_failed",
                    resource="session",
                    ip=ip,
                )
            return refuse(LOGIN_FAILED, 401)
        member = StaffMember.from_record(row)
        new_hash = (
            await hash_password_async(password) if needs_rehash(row["password_hash"]) else None
        )
        async with conn.transaction():
            await throttle.mark_succeeded(conn, attempt)
            await staff_table.record_login(conn, member.id, new_hash)
            await audit.record(conn, staff=member, action="login", resource="session", ip=ip)
        await throttle.prune(conn)
    # A fresh session: new cookie value and CSRF token, nothing carried over from before.
    request.state.session.log_in(member.id, member.session_version)
    response = redirect(request, next_url)
    devices.remember(response, request, settings, member.username)
    return response


async def logout(request: Request) -> Response:
    """End this session only; the member's other sessions stay."""
    member = current_staff(request)
    session = request.state.session
    async with db.connection(request) as conn, conn.transaction():
        if session.session_id is not None:
            expires_at = session.expires_at(request.app.state.settings)
            await revocations.revoke(conn, session.session_id, expires_at)
        await audit.record(
            conn, staff=member, action="logout", resource="session", ip=client_ip(request)
        )
    session.log_out()
    session.flash("You have been logged out.")
    return redirect(request, "/login")


async def logout_everywhere(request: Request) -> Response:
    """End every session of the member, on every device, this one included."""
    member = current_staff(request)
    async with db.connection(request) as conn, conn.transaction():
        await staff_table.end_sessions(conn, member.id)
        await audit.record(
            conn,
            staff=member,
            action="logout_everywhere",
            resource="session",
            ip=client_ip(request),
        )
    request.state.session.log_out()
    request.state.session.flash("You have been logged out on every device.")
    return redirect(request, "/login")
