"""The same URL shapes for every table, each built with access.route() and tagged with the
permission it needs on the table it names; the route walker expands them per table."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from admin import db
from admin.access import Access, CsrfFrom, route
from admin.live import presence
from admin.resources import (
    bulk_views,
    history_views,
    inline_views,
    keys,
    list_views,
    record_views,
    saved_views,
)
from admin.resources.model import Table
from admin.resources.resolve import SCHEMA_DRIFT, drifted, table_for
from admin.resources.spec import Action

Handler = Callable[[Request, Table], Awaitable[Response]]

LIST = "/{resource}"
RECORD = "/{resource}/{key}"


def page(name: str) -> str:
    """A page of the list itself, /<table>/<name>: a record key is never spelled so."""
    if name not in keys.LIST_SEGMENTS:
        raise ValueError(f"{name!r} is not one of keys.LIST_SEGMENTS")
    return f"{LIST}/{name}"


def resource_route(
    path: str,
    handler: Handler,
    action: Action,
    *,
    methods: Sequence[str] = ("GET",),
    csrf_from: CsrfFrom = CsrfFrom.FORM,
) -> Route:
    """A route whose handler gets the table named by the URL, once `action` is allowed
    (checked before any of the body is read)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        async with db.connection(request) as conn:
            table = await table_for(request, conn, action)
        try:
            return await handler(request, table)
        except SCHEMA_DRIFT:
            async with db.connection(request) as conn:
                raise await drifted(request, conn, table) from None

    built = route(path, endpoint, access=Access.STAFF, methods=methods, csrf_from=csrf_from)
    built.endpoint.permission = action  # type: ignore[attr-defined]
    return built


def resource_routes() -> list[Route]:
    """Every table's routes; after the panel's own, so /staff, /audit... win."""
    return [
        resource_route(LIST, list_views.list_page, Action.VIEW),
        resource_route(LIST, record_views.create, Action.ADD, methods=["POST"]),
        resource_route(page("new"), record_views.new, Action.ADD),
        resource_route(page("count"), list_views.count, Action.VIEW),
        resource_route(page("filter-builder"), list_views.filter_builder, Action.VIEW),
        resource_route(page("column-chooser"), list_views.column_chooser, Action.VIEW),
        resource_route(page("views"), saved_views.listing, Action.VIEW),
        resource_route(page("views"), saved_views.save, Action.VIEW, methods=["POST"]),
        resource_route(
            page("views") + "/{view_id}/delete", saved_views.delete, Action.VIEW, methods=["POST"]
        ),
        resource_route(page("lookup"), list_views.lookup, Action.VIEW),
        resource_route(page("matching"), list_views.matching, Action.VIEW),
        resource_route(page("validate"), record_views.validate, Action.VIEW, methods=["POST"]),
        resource_route(page("bulk"), bulk_views.bulk, Action.CHANGE, methods=["POST"]),
        resource_route(page("bulk") + "/undo", bulk_views.undo, Action.CHANGE, methods=["POST"]),
        resource_route(RECORD, record_views.show, Action.VIEW),
        resource_route(RECORD, record_views.update, Action.CHANGE, methods=["POST"]),
        resource_route(RECORD, record_views.delete_htmx, Action.DELETE, methods=["DELETE"]),
        resource_route(RECORD + "/edit", record_views.edit, Action.CHANGE),
        resource_route(RECORD + "/delete", record_views.confirm_delete, Action.DELETE),
        resource_route(RECORD + "/delete", record_views.delete, Action.DELETE, methods=["POST"]),
        resource_route(RECORD + "/row", inline_views.row, Action.VIEW),
        resource_route(RECORD + "/inline", inline_views.inline_edit, Action.CHANGE),
        resource_route(
            RECORD + "/inline", inline_views.inline_save, Action.CHANGE, methods=["POST"]
        ),
        resource_route(RECORD + "/history", history_views.show, Action.VIEW),
        resource_route(RECORD + "/revert", history_views.revert, Action.CHANGE, methods=["POST"]),
        resource_route(RECORD + "/presence", presence.presence, Action.CHANGE, methods=["POST"]),
        resource_route(RECORD + "/{field}", record_views.quick, Action.CHANGE, methods=["POST"]),
        # a GET under a record that names nothing: 404, not 405 for the POST above
        resource_route(RECORD + "/{field}", record_views.no_page, Action.VIEW),
    ]
