"""HTTP for one record: show (with related records), create, edit with the conflict check,
inline edit in the list, a declared one-field form, field checks, delete with a confirm step."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from admin import audit, db
from admin.access import client_ip, current_staff
from admin.display.wording import counted
from admin.live import actor as live_actor
from admin.resources import editing, reads, store, values
from admin.resources.carried import Return, safe_back, with_back
from admin.resources.model import Column, Table
from admin.resources.resolve import current_registry, render, zone
from admin.resources.spec import Action
from admin.web.htmx import is_htmx, redirect
from admin.web.templating import templates


def record_key(request: Request, table: Table) -> tuple[Any, ...]:
    try:
        return table.parse_key(request.path_params["key"])
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


async def load(
    conn: asyncpg.Connection, table: Table, key: tuple[Any, ...], *, select: str | None = None
) -> asyncpg.Record:
    row = await reads.get(conn, table, key, select or table.detail_select)
    if row is None:
        raise HTTPException(404, f"There is no {table.label} {table.encode_key(key)}.")
    return row


async def audit_row(
    request: Request,
    conn: asyncpg.Connection,
    table: Table,
    action: str,
    row: Any,
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    """The audit entry of one record's write, in the write's transaction: who, which record
    (its key as in the URL), the row before and after."""
    await audit.record(
        conn,
        staff=current_staff(request),
        action=action,
        resource=table.slug,
        resource_id=table.key_of(row),
        before=None if before is None else store.snapshot(before),
        after=None if after is None else store.snapshot(after),
        ip=client_ip(request),
    )


def title_of(table: Table, row: Any) -> str:
    """How a record is named on its pages: its label column, else its key."""
    label = table.label_column
    if label is not None and row[label.name] is not None:
        return str(row[label.name])
    return f"{table.label[:1].upper()}{table.label[1:]} {table.key_of(row)}"


async def _related(
    request: Request, conn: asyncpg.Connection, table: Table, row: Any
) -> list[reads.Related]:
    role = current_staff(request).role
    tables = [
        t
        for t in (await current_registry(request, conn)).tables.values()
        if t.allows(role, Action.VIEW)
    ]
    return await reads.related(conn, table, row, tables, lambda t: t.list_select)


async def show(request: Request, table: Table) -> Response:
    key = record_key(request, table)
    async with db.connection(request) as conn:
        row = await load(conn, table, key)
        related = await _related(request, conn, table, row)
        extra = await table.spec.extra_context(conn, row) if table.spec.extra_context else {}
    back = safe_back(table, request.query_params.get("back"))
    context = {
        "row": row,
        "title": title_of(table, row),
        "related": related,
        **extra,
        **_record_return(back),
    }
    if table.spec.quick_field:
        context.update(_quick_context(table, row, request))
    return render(request, table, "show.html", None, context)


def _record_return(back: str | None) -> dict[str, Any]:
    """A record page's way back to its list; the forms it opens (and its own one-field form)
    come back to it."""
    return {"back": back, "ret": Return(back, record=back is not None)}


def _quick_context(table: Table, row: Any, request: Request, **extra: Any) -> dict[str, Any]:
    column = table.by_name[str(table.spec.quick_field)]
    text = values.form_text(column.info, row[column.name], zone=zone(request))
    base = {
        "quick": column,
        "quick_text": text,
        "quick_error": None,
        "conflict": None,
        "token": row[reads.ROW_VERSION],
    }
    return {**base, **extra}


def _form(
    request: Request, table: Table, context: dict[str, Any], status_code: int = 200
) -> Response:
    return render(request, table, "form.html", "_form.html", context, status_code=status_code)


def _blank(table: Table) -> dict[str, str]:
    texts = {}
    for column in table.form_columns:
        default = (column.info.default_sql or "").lower()
        texts[column.name] = "true" if default == "true" else ""
    return texts


async def new(request: Request, table: Table) -> Response:
    context = {
        "row": None,
        "texts": _blank(table),
        "errors": {},
        "conflict": None,
        **_new_return(table, request.query_params),
    }
    return _form(request, table, context)


def _new_return(table: Table, params: Any) -> dict[str, Any]:
    back = safe_back(table, params.get("back"))
    return {"back": back, "ret": Return(back)}


async def create(request: Request, table: Table) -> Response:
    form = await request.form()
    submitted = editing.read(table, form, current=None, zone=zone(request))
    context: dict[str, Any] = {
        "row": None,
        "texts": submitted.texts,
        "errors": submitted.errors,
        "conflict": None,
        **_new_return(table, form),
    }
    if not submitted.valid:
        return _form(request, table, context, 422)
    async with db.connection(request) as conn:
        try:
            async with conn.transaction():
                await live_actor.mark(request, conn)
                row = await store.insert(conn, table, submitted.values, table.detail_select)
                await audit_row(request, conn, table, "create", row, after=row)
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
            context["errors"] = await _write_errors(conn, table, exc, submitted.values, None)
            return _form(request, table, context, 422)
    request.state.session.flash(
        f"{table.label.capitalize()} {title_of(table, row)} created.", "success"
    )
    return redirect(request, _after_save(table, row, form))


def opened_form(request: Request, row: Any, columns: Iterable[Column]) -> dict[str, Any]:
    """A form's context as it opens on `row`: each field's text, no errors, its version."""
    texts = {c.name: values.form_text(c.info, row[c.name], zone=zone(request)) for c in columns}
    return {
        "row": row,
        "texts": texts,
        "errors": {},
        "conflict": None,
        "token": row[reads.ROW_VERSION],
    }


async def edit(request: Request, table: Table) -> Response:
    key = record_key(request, table)
    async with db.connection(request) as conn:
        row = await load(conn, table, key)
    context = {
        **opened_form(request, row, table.form_columns),
        **_return(table, request.query_params),
    }
    return _form(request, table, context)


def _return(table: Table, params: Any) -> dict[str, Any]:
    ret = Return.from_params(table, params)
    return {"back": ret.back, "ret": ret}


async def save(
    request: Request,
    table: Table,
    form: Any,
    columns: list[Column] | None = None,
    *,
    action: str = "update",
) -> tuple[int, dict[str, Any]]:
    """Validate, then update if the row is still at the version the form was read at:
    (200 | 409 | 422, template context)."""
    key = record_key(request, table)
    token = editing.parse_token(form.get("version"))
    tz = zone(request)
    async with db.connection(request) as conn:
        current = await load(conn, table, key)
        submitted = editing.read(table, form, current=current, zone=tz, columns=columns)
        texts = {
            c.name: values.form_text(c.info, current[c.name], zone=tz) for c in table.form_columns
        }
        texts.update(submitted.texts)
        base = {
            "row": current,
            "texts": texts,
            "errors": submitted.errors,
            "token": token,
            "conflict": None,
        }
        if not submitted.valid:
            return 422, base
        try:
            async with conn.transaction():
                await live_actor.mark(request, conn)
                updated = await store.update(
                    conn, table, key, token, submitted.values, table.detail_select
                )
                if updated is not None and submitted.values:
                    await audit_row(
                        request, conn, table, action, current, before=current, after=updated
                    )
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
            errors = await _write_errors(conn, table, exc, submitted.values, key)
            return 422, {**base, "errors": errors}
        if updated is not None:
            return 200, {"row": updated}
        latest = await load(conn, table, key)
    shown = columns if columns is not None else list(table.form_columns)
    conflict = editing.conflict(shown, submitted.texts, latest, tz)
    return 409, {**base, "row": latest, "token": latest[reads.ROW_VERSION], "conflict": conflict}


def _after_save(table: Table, row: Any, form: Any) -> str:
    """Where a saved form goes: its form again, a blank form for the next, the list it was
    opened from (`back`), or the record."""
    then = form.get("_then")
    ret = Return.from_params(table, form)
    if then == "continue":
        return f"{table.record_url(row)}/edit{ret.query}"
    if then == "another":
        return with_back(f"{table.url}/new", ret.back)
    return ret.done(table.record_url(row))


async def update(request: Request, table: Table) -> Response:
    form = await request.form()
    if form.get("_then") == "reload":
        # a conflict's "use the saved version": nothing is written, the form reads the row anew
        key = table.encode_key(record_key(request, table))
        request.state.session.flash("Your changes were discarded; these are the saved values.")
        ret = Return.from_params(table, form)
        return redirect(request, f"{table.url}/{key}/edit{ret.query}")
    status, context = await save(request, table, form)
    if status == 200:
        row = context["row"]
        request.state.session.flash(
            f"{table.label.capitalize()} {title_of(table, row)} saved.", "success"
        )
        return redirect(request, _after_save(table, row, form))
    context.update(_return(table, form))
    return _form(request, table, context, status)


# ---- a declared one-field form (an order's status)


async def quick(request: Request, table: Table) -> Response:
    name = request.path_params["field"]
    if name != table.spec.quick_field:
        raise HTTPException(404, "Not Found")
    column = table.by_name[name]
    form = await request.form()
    back = safe_back(table, form.get("back"))
    if form.get("_then") == "reload":
        found_key = record_key(request, table)
        request.state.session.flash("Your change was discarded; this is the saved value.")
        return redirect(request, with_back(f"{table.url}/{table.encode_key(found_key)}", back))
    status, context = await save(request, table, form, [column], action=f"set_{name}")
    if status == 200:
        request.state.session.flash(
            f"{table.label.capitalize()} {title_of(table, context['row'])} saved.", "success"
        )
        return redirect(request, with_back(table.record_url(context["row"]), back))
    row_ = context["row"]
    extra = {
        "quick_text": context["texts"].get(name, ""),
        "quick_error": context["errors"].get(name) or context["errors"].get("__all__"),
        "conflict": context.get("conflict"),
        "token": context["token"],
    }
    page = _quick_context(table, row_, request, **extra)
    async with db.connection(request) as conn:
        related = await _related(request, conn, table, row_)
        more = await table.spec.extra_context(conn, row_) if table.spec.extra_context else {}
    full = {
        "row": row_,
        "title": title_of(table, row_),
        "related": related,
        **more,
        **page,
        **_record_return(back),
    }
    return render(request, table, "show.html", "_quick_form.html", full, status_code=status)


async def no_page(request: Request, table: Table) -> Response:
    raise HTTPException(404, "Not Found")


# ---- checks while typing


async def validate(request: Request, table: Table) -> Response:
    """The field's error slot (empty when fine) as it is left: syntax, rules, uniqueness."""
    form = await request.form()
    name = request.query_params.get("field") or str(form.get("field") or "")
    column = table.by_name.get(name)
    if column is None or not column.editable:
        raise HTTPException(400, "Unknown field to check.")
    raw_key = str(form.get("__key", "")).strip()
    key = None
    if raw_key:
        try:
            key = table.parse_key(raw_key)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
    text = editing.field_text(form, column) or ""
    submitted = editing.Submitted(texts={}, values={})
    message = editing._check(column, text, zone(request), submitted, creating=key is None)
    if message is None and name in submitted.values and submitted.values[name] is not None:
        async with db.connection(request) as conn:
            message = await _unique_error(conn, table, column, submitted.values[name], key)
    return templates.TemplateResponse(
        request, "resource/_field_message.html", {"field": name, "error": message}
    )


async def _unique_error(
    conn: asyncpg.Connection, table: Table, column: Column, value: Any, key: tuple[Any, ...] | None
) -> str | None:
    """Whether another row already holds `value` under a unique constraint or index on this
    column alone; the message links to that row."""
    other = await store.clashing_key(conn, table, column, value, key)
    if other is None:
        return None
    message = f"Another {table.label} already has this {column.label.lower()}."
    return editing.FieldError.linking(message, f"{table.url}/{other}", table.label)


async def _write_errors(
    conn: asyncpg.Connection,
    table: Table,
    exc: asyncpg.PostgresError,
    new: dict[str, Any],
    key: tuple[Any, ...] | None,
) -> dict[str, str]:
    """A refused write's errors by field; a uniqueness error links to the record that holds
    the value."""
    errors = store.constraint_errors(table, exc)
    if not isinstance(exc, asyncpg.UniqueViolationError):
        return errors
    for name in list(errors):
        column = table.by_name.get(name)
        if column is None or name not in new:
            continue
        found = await _unique_error(conn, table, column, new[name], key)
        if found is not None:
            errors[name] = found
    return errors


# ---- delete


async def confirm_delete(request: Request, table: Table) -> Response:
    key = record_key(request, table)
    async with db.connection(request) as conn:
        found = await load(conn, table, key)
        blockers = await _blockers(request, conn, table, found)
    context = {
        "row": found,
        "title": title_of(table, found),
        "blockers": blockers,
        "error": None,
        **_return(table, request.query_params),
    }
    return render(request, table, "confirm_delete.html", None, context)


async def _blockers(
    request: Request, conn: asyncpg.Connection, table: Table, found: Any
) -> list[tuple[reads.Related, int]]:
    """The records that refer to this one, with counts: what deleting it would meet."""
    related = await _related(request, conn, table, found)
    counts = await reads.reference_count(conn, related, found)
    return [(item, n) for item, n in counts if n]


async def _delete(
    request: Request, table: Table, token: str | None, ret: Return | None = None
) -> Response | None:
    key = record_key(request, table)
    async with db.connection(request) as conn:
        found = await load(conn, table, key)
        try:
            async with conn.transaction():
                await live_actor.mark(request, conn)
                deleted = await store.delete(conn, table, key, token, table.detail_select)
                if deleted is not None:
                    await audit_row(request, conn, table, "delete", found, before=deleted)
        except (asyncpg.ForeignKeyViolationError, asyncpg.RestrictViolationError):
            blockers = await _blockers(request, conn, table, found)
            described = (
                ", ".join(counted(n, item.table.label, item.table.plural) for item, n in blockers)
                or "other records"
            )
            message = (
                f"{title_of(table, found)} cannot be deleted: {described} still refer to it."
                " Remove or reassign those first."
            )
            return _refused(request, table, found, blockers, message, ret)
        if deleted is None:
            latest = await load(conn, table, key)
            blockers = await _blockers(request, conn, table, latest)
            message = (
                f"Someone changed this {table.label} since you opened it; review the change first."
            )
            return _refused(request, table, latest, blockers, message, ret)
    return None


def _refused(
    request: Request,
    table: Table,
    found: Any,
    blockers: Any,
    message: str,
    ret: Return | None,
) -> Response:
    if is_htmx(request):
        return templates.TemplateResponse(
            request,
            "_error_message.html",
            {"message": message},
            status_code=409,
            headers={"HX-Retarget": "#flashes", "HX-Reswap": "innerHTML"},
        )
    context = {
        "row": found,
        "title": title_of(table, found),
        "blockers": blockers,
        "error": message,
        "back": ret.back if ret else None,
        "ret": ret or Return(),
    }
    return render(request, table, "confirm_delete.html", None, context, status_code=409)


async def delete(request: Request, table: Table) -> Response:
    """The no-JS path: POST from the confirm page (carrying the version it showed)."""
    form = await request.form()
    token = editing.parse_token(form.get("version")) if form.get("version") else None
    ret = Return.from_params(table, form)
    refused = await _delete(request, table, token, ret)
    if refused is not None:
        return refused
    request.state.session.flash(
        f"{table.label.capitalize()} {request.path_params['key']} deleted.", "success"
    )
    # the record is gone: back to the list, whichever page the delete was asked from
    return redirect(request, ret.back or table.url)


async def delete_htmx(request: Request, table: Table) -> Response:
    """hx-delete from the list (after hx-confirm): an empty 200 removes the row."""
    raw = request.query_params.get("version")
    refused = await _delete(request, table, editing.parse_token(raw) if raw else None)
    if refused is not None:
        return refused
    if request.headers.get("hx-target", "").startswith("row-"):
        said = f"Deleted {table.label} {table.encode_key(record_key(request, table))}."
        return HTMLResponse("", headers={"HX-Trigger": json.dumps({"announce": said})})
    return redirect(request, table.url)
