"""CSRF token and same-origin checks on unsafe requests, and form bodies that are not UTF-8."""

from __future__ import annotations

import pytest

from tests.conftest import LoggedIn
from tests.snapshot import snapshot

NEW_STAFF = {"username": "newbie", "password": "a long password", "role": "staff"}


async def post_staff(client: LoggedIn, data: dict[str, str], headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return await client.http.post("/staff", data=data, headers=headers or {})


@pytest.mark.parametrize(
    ("form_token", "header_token"),
    [
        (None, None),
        ("wrong-token-" + "x" * 40, None),
        ("", None),
        (None, "wrong-token-" + "x" * 40),
        ("CORRECT", "wrong-token-" + "x" * 40),  # a wrong header is not rescued by the field
    ],
)
async def test_missing_or_wrong_token_is_403_and_changes_nothing(
    admin_client: LoggedIn, conn, form_token, header_token
):
    data = dict(NEW_STAFF)
    if form_token is not None:
        data["csrf_token"] = admin_client.csrf if form_token == "CORRECT" else form_token
    headers = {"X-CSRF-Token": header_token} if header_token else {}
    before = await snapshot(conn)
    response = await post_staff(admin_client, data, headers)
    assert response.status_code == 403
    assert "security token" in response.text
    assert await snapshot(conn) == before


async def test_the_token_works_as_field_or_header(admin_client: LoggedIn, conn):
    by_field = await post_staff(admin_client, {**NEW_STAFF, "csrf_token": admin_client.csrf})
    assert by_field.status_code == 303
    by_header = await post_staff(
        admin_client,
        {**NEW_STAFF, "username": "second"},
        {"X-CSRF-Token": admin_client.csrf, "HX-Request": "true"},
    )
    assert by_header.status_code == 200 and by_header.headers["hx-redirect"] == "/staff"
    assert await conn.fetchval("SELECT count(*) FROM staff") == 3


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
        {"Referer": "https://evil.example/page"},
        {"Origin": "http://testserver:8080"},
    ],
)
async def test_cross_origin_requests_are_403_even_with_the_token(
    admin_client: LoggedIn, conn, headers
):
    before = await snapshot(conn)
    response = await post_staff(
        admin_client, {**NEW_STAFF, "csrf_token": admin_client.csrf}, headers
    )
    assert response.status_code == 403
    assert "Cross-site" in response.text
    assert await snapshot(conn) == before


async def test_same_origin_header_passes(admin_client: LoggedIn):
    response = await post_staff(
        admin_client,
        {**NEW_STAFF, "csrf_token": admin_client.csrf},
        {"Origin": "http://testserver", "Referer": "http://testserver/staff"},
    )
    assert response.status_code == 303


async def test_login_form_needs_the_token_too(client, conn):
    before = await snapshot(conn)
    response = await client.post("/login", data={"username": "boss", "password": "whatever pass"})
    assert response.status_code == 403
    assert await snapshot(conn) == before


async def test_a_body_of_another_type_without_header_is_403(admin_client: LoggedIn, conn):
    before = await snapshot(conn)
    response = await admin_client.http.post(
        "/staff", json={**NEW_STAFF, "csrf_token": admin_client.csrf}
    )
    assert response.status_code == 403
    assert await snapshot(conn) == before


@pytest.mark.parametrize(
    "body",
    [
        b"username=%FF%FEname&password=a+long+password&role=staff",
        b"username=caf\xe9&password=a+long+password&role=staff",
        b"username=ok.name&password=%C3%28long+password&role=staff",
        b"username=\xc3\xa9t\xc3\xa9&password=a+long+password&role=staff",
    ],
)
async def test_a_form_body_that_is_not_utf8_is_400(admin_client: LoggedIn, conn, body):
    before = await snapshot(conn)
    for extra, headers in (
        (b"&csrf_token=" + admin_client.csrf.encode(), {}),
        (b"", {"X-CSRF-Token": admin_client.csrf}),
    ):
        response = await admin_client.http.post(
            "/staff",
            content=body + extra,
            headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        )
        assert response.status_code == 400
        assert "UTF-8" in response.text
    assert await snapshot(conn) == before


async def test_a_login_body_that_is_not_utf8_is_400(client, conn):
    page = await client.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    before = await snapshot(conn)
    response = await client.post(
        "/login",
        content=b"username=b%F6ss&password=x&csrf_token=" + token.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert await snapshot(conn) == before


async def test_percent_encoded_utf8_is_accepted(admin_client: LoggedIn, conn):
    # a UTF-8 password, as a browser sends it
    response = await admin_client.http.post(
        "/staff",
        content=b"username=utf.user&password=p%C3%A4ssw%C3%B6rd+long&role=staff&csrf_token="
        + admin_client.csrf.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 303
    assert await conn.fetchval("SELECT count(*) FROM staff WHERE username = 'utf.user'") == 1
