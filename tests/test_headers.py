"""Security headers on every kind of response: pages, fragments, static files, errors, redirects."""

from __future__ import annotations

import httpx
from starlette.responses import Response

from admin.access import Access, route
from admin.app import create_app
from admin.web.headers import SECURITY_HEADERS

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def assert_secure(response: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "style-src 'self'" in csp


async def test_pages_static_files_redirects_and_errors_carry_the_headers(client, staff_client):
    responses = [
        await client.get("/login"),
        await client.get("/static/admin.css"),
        await client.get("/static/does-not-exist.js"),
        await client.get("/"),  # 303 to the login page
        await client.get("/", headers={"HX-Request": "true"}),  # HX-Redirect
        await client.get("/no/such/page/at/all"),
        await client.post("/login", data={}),  # 403: no CSRF token
        await client.get("/healthz"),
        await staff_client.get("/staff"),  # 403 wrong role
        await staff_client.get("/"),
        await staff_client.http.post(
            "/staff",
            content=b"x=%FF",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
    ]
    assert [r.status_code for r in responses] == [
        200,
        200,
        404,
        303,
        200,
        404,
        403,
        200,
        403,
        200,
        403,
    ]
    for response in responses:
        assert_secure(response)


async def _boom(request) -> Response:  # type: ignore[no-untyped-def]
    raise RuntimeError("boom")


async def test_an_unhandled_error_page_carries_the_headers(settings, pool):
    app = create_app(settings, pool=pool)
    # first: /{resource} would answer for it otherwise
    app.router.routes.insert(0, route("/boom", _boom, access=Access.PUBLIC))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/boom")
    assert response.status_code == 500
    assert_secure(response)


def test_the_header_set_is_complete():
    assert set(SECURITY_HEADERS) >= {
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "Referrer-Policy",
    }
