"""/audit (admins only): the log newest first, filtered, with keyset pagination."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin import audit, replica
from admin.ids import InvalidId, parse_id
from admin.web.forms import has_control_characters
from admin.web.htmx import render

PAGE_SIZE = 50
MAX_FILTER_LENGTH = 200


def _filters(request: Request) -> dict[str, str]:
    filters: dict[str, str] = {}
    for name in audit.FILTER_COLUMNS:
        value = request.query_params.get(name, "").strip()
        if len(value) > MAX_FILTER_LENGTH or has_control_characters(value):
            raise HTTPException(400, f"The filter {name} is too long or has control characters.")
        if value:
            filters[name] = value
    return filters


def _before(request: Request) -> int | None:
    raw = request.query_params.get("before", "")
    if not raw:
        return None
    try:
        return parse_id(raw)
    except InvalidId:
        raise HTTPException(400, "before must be an entry id (a whole number).") from None


async def audit_log(request: Request) -> Response:
    filters = _filters(request)
    before = _before(request)
    async with replica.read_connection(request) as conn:
        entries, next_before = await audit.list_entries(
            conn, filters, before=before, limit=PAGE_SIZE
        )
    next_url = None
    if next_before is not None:
        next_url = "/audit?" + urlencode({**filters, "before": str(next_before)})
    context = {
        "entries": entries,
        "filters": filters,
        "next_url": next_url,
        "first_url": "/audit?" + urlencode(filters) if before is not None else None,
    }
    return render(request, "audit/index.html", "audit/_audit_table.html", context)
