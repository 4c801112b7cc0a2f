"""POST /tables/refresh (admins): read the catalog again now, not within seconds."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from admin import db
from admin.resources.registry import registry
from admin.web.htmx import redirect


async def refresh_tables(request: Request) -> Response:
    async with db.connection(request) as conn:
        found = registry(request)
        await found.refresh(conn)
    request.state.session.flash(f"Tables read again: {len(found.tables)} found.", "success")
    back = request.headers.get("referer", "/")
    return redirect(request, back if back.startswith(("/", str(request.base_url))) else "/")
