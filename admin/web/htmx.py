"""Full page or fragment: the one place that decides, plus HTMX-aware redirects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def wants_fragment(request: Request) -> bool:
    """HTMX asked for a piece of the page (a boosted navigation wants the whole page)."""
    return (
        is_htmx(request)
        and request.headers.get("hx-boosted") != "true"
        # a back-button cache miss re-fetches the URL and needs the whole page
        and request.headers.get("hx-history-restore-request") != "true"
    )


def render(
    request: Request,
    page: str,
    fragment: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The fragment for an HTMX request, the page (which includes the fragment) otherwise."""
    from admin.web.templating import templates

    name = fragment if wants_fragment(request) else page
    return templates.TemplateResponse(
        request, name, dict(context or {}), status_code=status_code, headers=dict(headers or {})
    )


# What a URL may keep as is in a header: reserved characters and existing escapes; anything
# else (non-ASCII, spaces, controls) is percent-encoded, as RedirectResponse does for Location.
_URL_SAFE = ":/%#?=@[]!$&'()*+,;~"


def header_url(url: str) -> str:
    """`url` fit for a response header: headers are Latin-1, a `next` may hold any text."""
    return quote(url, safe=_URL_SAFE)


def redirect(request: Request, url: str) -> Response:
    """303 after a plain form post; HX-Redirect for HTMX so the browser navigates for real."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": header_url(url)})
    return RedirectResponse(url, status_code=303)
