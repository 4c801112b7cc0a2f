"""HTTP for a list row on its own: the row (live updates, a cancelled edit) and its inline
editor (open, save, conflict). Each carries the list's state in its URL (`cols`, `back`;
admin/resources/carried.py), so the row comes back with the columns the list shows."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from admin import db
from admin.resources.carried import Carried
from admin.resources.model import Table
from admin.resources.record_views import load, opened_form, record_key, save, title_of
from admin.resources.resolve import render


async def row(request: Request, table: Table) -> Response:
    carried = Carried.from_params(table, request.query_params)
    async with db.connection(request) as conn:
        found = await load(conn, table, record_key(request, table), select=carried.select)
    return render(request, table, "_row.html", None, {"row": found, **carried.context()})


async def inline_edit(request: Request, table: Table) -> Response:
    carried = Carried.from_params(table, request.query_params)
    async with db.connection(request) as conn:
        found = await load(conn, table, record_key(request, table), select=carried.select)
    context = {**opened_form(request, found, carried.editable), **carried.context()}
    return render(request, table, "_row_edit.html", None, context)


async def inline_save(request: Request, table: Table) -> Response:
    """The plain row when saved, the edit row with errors (422) or the conflict (409)."""
    carried = Carried.from_params(table, request.query_params)
    status, context = await save(request, table, await request.form(), carried.editable)
    if status == 200:
        async with db.connection(request) as conn:
            fresh = await load(conn, table, record_key(request, table), select=carried.select)
        response = render(request, table, "_row.html", None, {"row": fresh, **carried.context()})
        # read out and shown on the row by static/a11y.js
        said = {"message": f"Saved {title_of(table, fresh)}.", "row": f"row-{table.key_of(fresh)}"}
        response.headers["HX-Trigger"] = json.dumps({"announce": said})
        return response
    context.update(carried.context())
    return render(request, table, "_row_edit.html", None, context, status_code=status)
