"""The table a resource route names, checked against the staff member's permissions, and
the pieces every resource handler shares (time zone, templates, catalog drift)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, tzinfo
from functools import lru_cache
from typing import Any

import asyncpg
from jinja2 import Template
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin.access import current_staff
from admin.display import timefmt
from admin.resources.model import Table
from admin.resources.registry import Registry, registry
from admin.resources.spec import Action
from admin.web.htmx import wants_fragment
from admin.web.templating import templates

VERBS = {
    Action.VIEW: "view",
    Action.ADD: "add",
    Action.CHANGE: "change",
    Action.DELETE: "delete",
    Action.EXPORT: "export",
    Action.IMPORT: "import",
}


async def current_registry(request: Request, conn: asyncpg.Connection) -> Registry:
    return await registry(request).current(conn)


async def table_for(request: Request, conn: asyncpg.Connection, action: Action) -> Table:
    """The route's table; 404 when there is none, 403 when this action is not allowed."""
    found = (await current_registry(request, conn)).get(request.path_params["resource"])
    if found is None:
        raise HTTPException(404, f"There is no table {request.path_params['resource'][:80]!r}.")
    require(request, found, action)
    return found


def require(request: Request, table: Table, action: Action) -> None:
    role = current_staff(request).role
    if not table.allows(role, action):
        if not table.writable and action in (Action.ADD, Action.CHANGE, Action.DELETE):
            raise HTTPException(403, f"{table.title} is read-only here: it has no primary key.")
        raise HTTPException(403, f"Your role may not {VERBS[action]} {table.plural}.")


def allowed(request: Request, table: Table) -> dict[str, bool]:
    role = current_staff(request).role
    return {VERBS[a]: table.allows(role, a) for a in Action}


def zone(request: Request) -> tzinfo:
    """The staff member's time zone (UTC until they choose one)."""
    name = getattr(current_staff(request), "time_zone", None) or "UTC"
    return UTC if name == "UTC" else timefmt.zone(name)


def template(table: Table, name: str) -> Template:
    """The table's own template (`<slug>/<name>`) if it has one, else the generic one."""
    return _select(tuple(table.template_names(name)))


@lru_cache(maxsize=512)
def _select(names: tuple[str, ...]) -> Template:
    return templates.env.select_template(list(names))


def render(
    request: Request,
    table: Table,
    page: str,
    fragment: str | None,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The fragment for an HTMX request (when there is one), the page otherwise."""
    name = fragment if fragment is not None and wants_fragment(request) else page
    tz = zone(request)
    full = {
        "table": table,
        "can": allowed(request, table),
        "zone": tz,
        "zone_name": str(tz),
        **context,
    }
    return templates.TemplateResponse(
        request,
        template(table, name),  # type: ignore[arg-type]
        full,
        status_code=status_code,
        headers=dict(headers or {}),
    )


SCHEMA_DRIFT = (asyncpg.UndefinedColumnError, asyncpg.UndefinedTableError)


async def drifted(request: Request, conn: asyncpg.Connection, table: Table) -> HTTPException:
    """A statement failed because the table changed under the page: re-read the catalog and
    say so (409), instead of a 500."""
    await registry(request).refresh(conn)
    return HTTPException(
        409,
        f"The table {table.info.name!r} changed while you were working (a column or the table"
        " itself is gone). Reload the page; nothing was saved.",
    )
