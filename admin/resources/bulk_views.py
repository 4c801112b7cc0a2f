"""HTTP for bulk actions on a list: the confirm step (which records, what refers to them, a
safer alternative), the change itself (one statement, or a batch per request for many
records), and its undo. Every answer returns to the list page the action started from."""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin import audit, db
from admin.access import client_ip, current_staff
from admin.live import actor as live_actor
from admin.resources import bulk_batches, bulk_checks, bulk_undo, store
from admin.resources.list_views import parse_query
from admin.resources.model import Table
from admin.resources.query import ListQuery
from admin.resources.registry import registry
from admin.resources.resolve import render, require
from admin.resources.spec import Action, BulkAction
from admin.web.htmx import redirect

MAX_BULK_SELECTED = 10_000


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
    if keys == []:
        # back to the same list, search and page, rather than an error page that loses them
        request.state.session.flash(
            f"Nothing was changed: select at least one {table.label}, or all matching.", "error"
        )
        return redirect(request, query.state_url())
    target = store.target(table, query, keys)
    async with db.connection(request) as conn:
        if form.get("confirm") != "yes":
            context = await _confirm_context(request, conn, table, action, query, target)
            context.update(
                value=value, ids=None if keys is None else [table.encode_key(k) for k in keys]
            )
            return render(request, table, "bulk_confirm.html", None, context)
        if keys is None and form.get("batched") == "1":
            return await _batch(request, conn, table, action, value, query, form)
        batch = None
        try:
            async with conn.transaction():
                await live_actor.mark(request, conn)
                changed = await _apply(request, conn, table, action, value, target)
                if changed and bulk_undo.reversible(table, action):
                    batch = await bulk_undo.batch_ids(
                        conn, current_staff(request).id, f"bulk_{action.name}", table.slug
                    )
        except (asyncpg.ForeignKeyViolationError, asyncpg.RestrictViolationError) as exc:
            request.state.session.flash(
                f"Nothing was deleted: other records still refer to some of these {table.plural}"
                f" ({exc.detail or exc}). Remove or reassign those first.",
                "error",
            )
            return redirect(request, query.state_url())
    verb = _verb(action, value)
    request.state.session.flash(f"{verb}: {changed:,} {table.plural} changed.", "success")
    return _back_to_list(request, table, query, verb, changed, batch)


def _verb(action: BulkAction, value: Any) -> str:
    return action.label + (f" to {value}" if action.column and action.value is None else "")


def _back_to_list(
    request: Request,
    table: Table,
    query: ListQuery,
    verb: str,
    changed: int,
    audit_range: tuple[int, int] | None,
) -> Response:
    """To the list page the action started from, offering to undo what it changed."""
    response = redirect(request, query.state_url())
    if audit_range is not None and changed:
        offer = bulk_undo.Offer(table.slug, *audit_range, f"{verb}: {changed:,} {table.plural}")
        bulk_undo.remember(response, offer, request.state.session.over_https)
    return response


async def _batch(
    request: Request,
    conn: asyncpg.Connection,
    table: Table,
    action: BulkAction,
    value: Any,
    query: ListQuery,
    form: Any,
) -> Response:
    """One batch of a bulk action over all matching records, then the progress page (which
    asks for the next), or the list when it is finished or stopped."""
    try:
        progress = bulk_batches.Progress.from_form(table, form)
    except ValueError:
        raise HTTPException(400, "This bulk action's progress is not valid; start again.") from None
    verb = _verb(action, value)
    audit_range = (progress.first_audit, progress.last_audit) if progress.first_audit else None
    if form.get("stop") == "1":
        request.state.session.flash(
            f"Stopped: {verb} reached {progress.done:,} of {progress.total:,} {table.plural}"
            f" ({progress.changed:,} changed); the rest were left as they were.",
            "warning",
        )
        return _back_to_list(request, table, query, verb, progress.changed, audit_range)
    keys = await bulk_batches.next_keys(conn, table, query, progress.last_key)
    changed = 0
    if keys:
        try:
            async with conn.transaction():
                await live_actor.mark(request, conn)
                changed = await _apply(
                    request, conn, table, action, value, store.target(table, query, keys)
                )
                written = await bulk_undo.batch_ids(
                    conn, current_staff(request).id, f"bulk_{action.name}", table.slug
                )
        except (asyncpg.ForeignKeyViolationError, asyncpg.RestrictViolationError) as exc:
            request.state.session.flash(
                f"Stopped after {progress.done:,} of {progress.total:,}: {progress.changed:,}"
                f" {table.plural} deleted. The next {len(keys):,} were left as they were: other"
                f" records still refer to some of them ({exc.detail or exc}).",
                "error",
            )
            return _back_to_list(request, table, query, verb, progress.changed, audit_range)
        if written is not None and bulk_undo.reversible(table, action):
            audit_range = (progress.first_audit or written[0], written[1])
    progress = bulk_batches.Progress(
        done=progress.done + len(keys),
        changed=progress.changed + changed,
        total=max(progress.total, progress.done + len(keys)),
        last_key=table.encode_key(keys[-1]) if keys else progress.last_key,
        first_audit=audit_range[0] if audit_range else 0,
        last_audit=audit_range[1] if audit_range else 0,
    )
    if len(keys) < bulk_batches.BATCH_SIZE:
        request.state.session.flash(
            f"{verb}: {progress.changed:,} {table.plural} changed.", "success"
        )
        return _back_to_list(request, table, query, verb, progress.changed, audit_range)
    context = {"action": action, "value": value, "query": query, "progress": progress}
    return render(request, table, "bulk_progress.html", "_bulk_progress.html", context)


async def undo(request: Request, table: Table) -> Response:
    """Put back what a recent bulk change of this staff member's changed."""
    form = await request.form()
    query = parse_query(table, {k: str(v) for k, v in form.items() if isinstance(v, str)})
    try:
        first, last = bulk_undo.parse_token(str(form.get("batch", "")))
    except ValueError:
        raise HTTPException(400, "This undo link is not valid.") from None
    async with db.connection(request) as conn, conn.transaction():
        await live_actor.mark(request, conn)
        done = await bulk_undo.undo(request, conn, table, first, last)
    if done is None:
        request.state.session.flash(
            "Nothing to undo: the change is older than 10 minutes, or not yours.", "error"
        )
    else:
        restored, skipped = done
        message = f"Undone: {restored:,} {table.plural} put back."
        if skipped:
            message += f" {skipped:,} changed again since were left as they are."
        request.state.session.flash(message, "success")
    response = redirect(request, query.state_url())
    bulk_undo.forget(response)
    return response


async def _confirm_context(
    request: Request,
    conn: asyncpg.Connection,
    table: Table,
    action: BulkAction,
    query: ListQuery,
    target: tuple[str, list[object]],
) -> dict[str, Any]:
    count_ = await store.count_target(conn, target)
    found: list[bulk_checks.Blocker] = []
    alternative = bulk_checks.safe_alternative(table, action)
    if action.delete:
        current = await registry(request).current(conn)
        by_name = {(t.info.schema, t.info.name): t for t in current.tables.values()}
        found = await bulk_checks.blockers(conn, table, by_name, target)
    return {
        "action": action,
        "query": query,
        "count": count_,
        "preview": await bulk_checks.preview(conn, table, query, target),
        "blockers": found,
        "refused": any(b.refuses and b.count for b in found),
        "batched": count_ > bulk_batches.BATCH_SIZE,
        "batch_size": bulk_batches.BATCH_SIZE,
        "alternative": alternative
        if alternative and table.allows(current_staff(request).role, Action.CHANGE)
        else None,
    }


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
