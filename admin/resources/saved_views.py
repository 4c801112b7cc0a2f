"""Saved list views: a named list state per staff member, or shared with everyone. A shared
view outlives its owner's account ("shared by a former staff member"); its owner, or any
admin, removes it.

A view is the list's own query string (search, filters, sort, page size, columns), checked
by parsing it as the list would and stored in the list's spelling. The views are fetched by
the list page after it has loaded, never on the list's own request.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import asyncpg
from starlette.datastructures import ImmutableMultiDict
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin import db
from admin.access import current_staff
from admin.resources.model import Table
from admin.resources.query import InvalidQuery, ListQuery
from admin.resources.resolve import render
from admin.web.htmx import redirect

MAX_NAME = 80
MAX_QUERY = 4000
MAX_VIEWS = 50  # shown per list (own first, then shared)
POSITION_PARAMS = frozenset({"after", "before", "last", "at", "offset"})


@dataclass(frozen=True)
class SavedView:
    id: int
    name: str
    query: str
    shared: bool
    mine: bool
    owner: str | None  # None: the owner's account was deleted (shared views outlive it)
    removable: bool

    def url(self, table: Table) -> str:
        return table.url + (f"?{self.query}" if self.query else "")


async def for_list(
    conn: asyncpg.Connection, table: Table, staff_id: int, *, admin: bool = False
) -> list[SavedView]:
    rows = await conn.fetch(
        """
        SELECT v.id, v.name, v.query, v.shared, v.staff_id IS NOT DISTINCT FROM $2 AS mine,
               s.username AS owner
        FROM saved_views v LEFT JOIN staff s ON s.id = v.staff_id
        WHERE v.resource = $1 AND (v.staff_id = $2 OR v.shared)
        ORDER BY v.staff_id IS DISTINCT FROM $2, lower(v.name), v.id
        LIMIT $3
        """,
        table.slug,
        staff_id,
        MAX_VIEWS,
    )
    return [SavedView(**dict(r), removable=r["mine"] or (admin and r["shared"])) for r in rows]


def canonical(table: Table, raw: str) -> str:
    """The list's own spelling of a query string; InvalidQuery when the list would refuse it."""
    if len(raw) > MAX_QUERY:
        raise InvalidQuery(f"A view's state is at most {MAX_QUERY:,} characters.")
    # a view is a way of looking at the list, not a place in it: no cursor or position
    pairs = [(k, v) for k, v in parse_qsl(raw.lstrip("?")) if k not in POSITION_PARAMS]
    query = ListQuery.from_params(table, ImmutableMultiDict(pairs))
    return urlencode(query.params())


async def listing(request: Request, table: Table) -> Response:
    async with db.connection(request) as conn:
        staff = current_staff(request)
        views = await for_list(conn, table, staff.id, admin=staff.is_admin)
    return render(request, table, "_saved_views.html", None, {"views": views})


async def save(request: Request, table: Table) -> Response:
    form = await request.form()
    name = " ".join(str(form.get("name", "")).split())
    if not name or len(name) > MAX_NAME:
        raise HTTPException(422, f"Give the view a name of 1 to {MAX_NAME} characters.")
    try:
        query = canonical(table, str(form.get("query", "")))
    except InvalidQuery as exc:
        raise HTTPException(422, f"This list state cannot be saved: {exc}") from None
    shared = form.get("shared") in ("1", "true", "on")
    async with db.connection(request) as conn:
        await conn.execute(
            """
            INSERT INTO saved_views (staff_id, resource, name, query, shared)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (staff_id, resource, name)
            DO UPDATE SET query = EXCLUDED.query, shared = EXCLUDED.shared
            """,
            current_staff(request).id,
            table.slug,
            name,
            query,
            shared,
        )
    who = "everyone" if shared else "you"
    request.state.session.flash(f"Saved the view “{name}” (for {who}).", "success")
    return redirect(request, table.url + (f"?{query}" if query else ""))


async def delete(request: Request, table: Table) -> Response:
    raw = request.path_params.get("view_id", "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise HTTPException(404, "There is no such view.")
    staff = current_staff(request)
    async with db.connection(request) as conn:
        # its owner removes a view; an admin also any shared one (a former colleague's too)
        name = await conn.fetchval(
            "DELETE FROM saved_views WHERE id = $1 AND resource = $3"
            " AND (staff_id = $2 OR (shared AND $4)) RETURNING name",
            int(raw),
            staff.id,
            table.slug,
            staff.is_admin,
        )
    if name is None:
        raise HTTPException(404, "There is no such view that you may remove.")
    request.state.session.flash(f"Removed the view “{name}”.", "success")
    return redirect(request, table.url)
