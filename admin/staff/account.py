"""/account: every staff member changes their own password and time zone here.

The current password is asked for (and counts toward login throttling when wrong, so a
borrowed session cannot be used to guess it). A change ends every other session of the
member; this one stays valid by following the new session_version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from admin import audit, db
from admin.access import client_ip, current_staff
from admin.display import timefmt
from admin.ops import metrics
from admin.staff import devices, throttle
from admin.staff import table as staff_table
from admin.staff.passwords import hash_password_async, verify_password_async
from admin.web.forms import text_field
from admin.web.htmx import redirect, render

CURRENT = "current_password"
NEW = "new_password"
CONFIRM = "confirm_password"
TIME_ZONE = "time_zone"


def _form(
    request: Request,
    errors: dict[str, str],
    status_code: int = 200,
    fragment: str = "_account_password.html",
    **kw: Any,
) -> Response:
    current = current_staff(request).time_zone
    context = {
        "errors": errors,
        "min_password_length": staff_table.MIN_PASSWORD_LENGTH,
        "zone_groups": timefmt.zone_groups(),
        "current_zone": current,
        "current_zone_offered": timefmt.is_offered(current),
        "now": datetime.now(UTC),
    }
    return render(request, "account.html", fragment, context, status_code=status_code, **kw)


async def account_page(request: Request) -> Response:
    return _form(request, {})


async def change_time_zone(request: Request) -> Response:
    member = current_staff(request)
    form = await request.form()
    chosen = text_field(form, TIME_ZONE)
    problem = timefmt.zone_problem(chosen)
    if problem:
        return _form(request, {TIME_ZONE: problem}, 422, "_account_time_zone.html")
    if chosen != member.time_zone:
        async with db.connection(request) as conn, conn.transaction():
            before, after = await staff_table.set_time_zone(conn, member.id, chosen)
            await audit.record(
                conn,
                staff=member,
                action="time_zone_change",
                resource="staff",
                resource_id=member.id,
                before={"time_zone": before.time_zone},
                after={"time_zone": after.time_zone},
                ip=client_ip(request),
            )
    request.state.session.flash(f"Times are now shown in {chosen}.", "success")
    return redirect(request, "/account")


async def change_password(request: Request) -> Response:
    member = current_staff(request)
    form = await request.form()
    current = text_field(form, CURRENT)
    new = text_field(form, NEW)
    confirm = text_field(form, CONFIRM)
    errors: dict[str, str] = {}
    if not current or len(current) > staff_table.MAX_PASSWORD_LENGTH:
        errors[CURRENT] = "Enter your current password."
    problem = staff_table.password_problem(new)
    if problem:
        errors[NEW] = problem
    elif new != confirm:
        errors[CONFIRM] = "The two new passwords differ."
    if errors:
        return _form(request, errors, 422)

    ip = client_ip(request)
    settings = request.app.state.settings
    device = devices.known_device(request, settings, member.username)
    subject = throttle.subject(settings.secret_key, member.username)
    async with db.connection(request) as conn:
        attempt = await throttle.begin_attempt(conn, subject, ip, device)
        if isinstance(attempt, throttle.Refusal):
            metrics.LOGIN_THROTTLED.inc()
            errors[CURRENT] = "Too many wrong passwords. Try again later."
            return _form(request, errors, 429, headers={"Retry-After": str(attempt.retry_after)})
        stored = await staff_table.password_hash(conn, member.id)
        if not await verify_password_async(stored, current):
            metrics.LOGIN_FAILURES.inc()
            errors[CURRENT] = "That is not your current password."
            return _form(request, errors, 422)
        new_hash = await hash_password_async(new)
        async with conn.transaction():
            await throttle.mark_succeeded(conn, attempt)
            before, after = await staff_table.set_password(conn, member.id, new_hash)
            await audit.record(
                conn,
                staff=member,
                action="password_change",
                resource="staff",
                resource_id=member.id,
                before=staff_table.public_fields(before),
                after=staff_table.public_fields(after),
                ip=ip,
            )
    request.state.session.follow_version(after.session_version)
    request.state.session.flash("Password changed; your other sessions have ended.", "success")
    return redirect(request, "/account")
