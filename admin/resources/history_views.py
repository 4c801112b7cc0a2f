"""HTTP for a record's history: its audit entries in plain words, newest first, and an
admin's one-click restore of an earlier version through the conflict-checked, audited write
path every edit takes."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin import audit, db
from admin.access import client_ip, current_staff
from admin.ids import InvalidId, parse_id
from admin.live import actor as live_actor
from admin.resources import editing, history, reads, store, values
from admin.resources.carried import safe_back, with_back
from admin.resources.model import Table
from admin.resources.record_views import record_key, title_of
from admin.resources.resolve import render, zone
from admin.resources.spec import Action
from admin.web.htmx import redirect

PAGE_SIZE = 50


def _entry_id(raw: Any, name: str) -> int:
    try:
        return parse_id(str(raw or ""))
    except InvalidId:
        raise HTTPException(400, f"{name} must be a history entry id (a whole number).") from None


async def _context(
    request: Request,
    conn: asyncpg.Connection,
    table: Table,
    key: tuple[Any, ...],
    back: str | None,
) -> dict[str, Any]:
    """The history page of the record `key`: 404 only when there is neither a row nor any
    entry (a deleted record's history stays readable)."""
    raw_before = request.query_params.get("before")
    before = _entry_id(raw_before, "before") if raw_before else None
    resource_id = table.encode_key(key)
    row = await reads.get(conn, table, key, table.detail_select)
    filters = {"resource": table.slug, "resource_id": resource_id}
    entries, next_before = await audit.list_entries(conn, filters, before=before, limit=PAGE_SIZE)
    if row is None and not entries and before is None:
        raise HTTPException(404, f"There is no {table.label} {resource_id}, nor any history.")
    staff = current_staff(request)
    can_restore = row is not None and staff.is_admin and table.allows(staff.role, Action.CHANGE)
    tz = zone(request)
    # opened from a record page that came from a list: every link here still leads back to it
    base = f"{table.url}/{resource_id}/history"
    older = {"before": next_before, **({"back": back} if back else {})}
    return {
        "row": row,
        "key": resource_id,
        "back": back,
        "record_url": with_back(table.record_url(row), back) if row is not None else None,
        "title": title_of(table, row) if row is not None else f"{table.label} {resource_id}",
        "entries": [history.describe(table, e, tz, row if can_restore else None) for e in entries],
        "can_restore": can_restore,
        "token": row[reads.ROW_VERSION] if row is not None else None,
        "next_url": f"{base}?{urlencode(older)}" if next_before else None,
        "first_url": with_back(base, back) if before is not None else None,
        "error": None,
        "conflict": None,
    }


async def show(request: Request, table: Table) -> Response:
    key = record_key(request, table)
    async with db.connection(request) as conn:
        back = safe_back(table, request.query_params.get("back"))
        context = await _context(request, conn, table, key, back)
    return render(request, table, "history.html", "_history_entries.html", context)


def _state(raw: Any) -> str | None:
    text = str(raw or "").strip()
    if not text:
        return None
    if text not in history.STATES:
        raise HTTPException(400, "state must be before or after.")
    return text


def _refused(errors: dict[str, str], table: Table) -> str:
    parts = [
        message if name == "__all__" else f"{history.label_of(table, name)}: {message}"
        for name, message in errors.items()
    ]
    return "Nothing was restored. " + " ".join(parts)


async def revert(request: Request, table: Table) -> Response:
    """POST fields `entry` (an entry of this record), `version` (the row's token as the
    page showed it) and optionally `state` (before | after; default: the entry's button)."""
    if not current_staff(request).is_admin:
        raise HTTPException(403, "Only admins may restore an earlier version.")
    form = await request.form()
    entry_id = _entry_id(form.get("entry"), "entry")
    token = editing.parse_token(form.get("version"))
    state = _state(form.get("state"))
    key = record_key(request, table)
    resource_id = table.encode_key(key)
    tz = zone(request)
    async with db.connection(request) as conn:
        entry = await audit.record_entry(conn, entry_id, table.slug, resource_id)
        if entry is None:
            raise HTTPException(
                404, f"Entry {entry_id} is not in the history of {table.label} {resource_id}."
            )
        state = state or history.default_state(entry)
        snap = history.side(entry, state) if state else None
        if snap is None or not history.restorable(table, snap):
            raise HTTPException(400, "This entry holds no values that can be restored here.")
        current = await reads.get(conn, table, key, table.detail_select)
        if current is None:
            raise HTTPException(
                404,
                f"This {table.label} was deleted: restoring a deleted record is not supported.",
            )
        restored = history.restore_values(table, snap)
        if restored.errors:
            error = _refused(restored.errors, table)
            return await _page(request, table, conn, key, 422, error=error)
        changes = {n: v for n, v in restored.values.items() if v != current[n]}
        try:
            async with conn.transaction():
                await live_actor.mark(request, conn)
                updated = await store.update(conn, table, key, token, changes, table.detail_select)
                if updated is not None and changes:
                    marker = {"entry": entry_id, "state": state}
                    await audit.record(
                        conn,
                        staff=current_staff(request),
                        action="revert",
                        resource=table.slug,
                        resource_id=resource_id,
                        before=store.snapshot(current),
                        after={**store.snapshot(updated), history.RESTORED: marker},
                        ip=client_ip(request),
                    )
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
            error = _refused(store.constraint_errors(table, exc), table)
            return await _page(request, table, conn, key, 422, error=error)
        if updated is None:
            latest = await reads.get(conn, table, key, table.detail_select)
            if latest is None:
                raise HTTPException(404, f"This {table.label} was deleted meanwhile.")
            columns = [c for c in table.form_columns if c.name in restored.values]
            mine = {
                c.name: values.form_text(c.info, restored.values[c.name], zone=tz) for c in columns
            }
            conflict = editing.conflict(columns, mine, latest, tz)
            return await _page(request, table, conn, key, 409, conflict=conflict)
    title = title_of(table, updated)
    message = (
        f"{table.label.capitalize()} {title}: restored the version from the history."
        if changes
        else f"{table.label.capitalize()} {title} already has these values: nothing to restore."
    )
    request.state.session.flash(message, "success")
    back = safe_back(table, form.get("back"))
    return redirect(request, with_back(table.record_url(updated), back))


async def _page(
    request: Request,
    table: Table,
    conn: asyncpg.Connection,
    key: tuple[Any, ...],
    status: int,
    **extra: Any,
) -> Response:
    form = await request.form()
    back = safe_back(table, form.get("back"))
    context = {**await _context(request, conn, table, key, back), **extra}
    return render(request, table, "history.html", None, context, status_code=status)
