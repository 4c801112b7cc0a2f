"""Who may start an export with a GET: only this site's own pages, or a typed address.

An export writes an audit entry and runs a COPY over the whole table, so a link on another
site must not be able to start one in an admin's browser. A GET that does not prove it comes
from here gets a page whose button POSTs the same query with the CSRF token instead.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from admin.csvio.tables import CsvTable
from admin.web.templating import templates

# Fetch Metadata: "none" is a navigation the user started (typed address, bookmark)
TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})


def _names_this_host(request: Request, source: str) -> bool:
    parts = urlsplit(source)
    return parts.scheme in {"http", "https"} and parts.netloc == request.headers.get("host", "")


def proves_same_origin(request: Request) -> bool:
    """Sec-Fetch-Site where the browser sends it, else an Origin or Referer naming this host."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site.lower() in TRUSTED_FETCH_SITES
    source = request.headers.get("origin") or request.headers.get("referer")
    return bool(source) and source != "null" and _names_this_host(request, source)


def confirm_page(request: Request, spec: CsvTable) -> Response:
    """The download button for a GET that came from elsewhere; nothing is exported yet."""
    query = request.url.query
    action = f"/{spec.table}/export.csv" + (f"?{query}" if query else "")
    return templates.TemplateResponse(
        request,
        "csv/export_confirm.html",
        {"spec": spec, "action": action, "filters": dict(request.query_params)},
        headers={"Cache-Control": "no-store"},
    )
