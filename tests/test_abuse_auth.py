"""Abuse probes on logins: an attacker can slow an account's guessing, never keep its owner out.

Clients are told apart by the client address of the ASGI transport, as a server without
proxy headers sees them. Failures an attacker would need many requests for are seeded
straight into login_attempts, so no assertion depends on how fast the machine is.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import asyncpg
import httpx
import pytest

from admin.passwords import verify_password
from tests.cli import cli_env, start_serve
from tests.conftest import STAFF_PASSWORD, TEST_SECRET_KEY, create_staff, csrf_from, log_in

OWNER_IP = "10.1.0.1"


def client(app, ip: str, device_cookie: str | None = None) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    if device_cookie:
        http.cookies.set("admin_device", device_cookie)
    return http


async def attempt(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await http.get("/login")
    return await http.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_from(page.text)},
    )


async def returning_owner_device(app, username: str = "clerk") -> str:  # type: ignore[no-untyped-def]
    """Log in and out as `username` from OWNER_IP; the device cookie this browser keeps."""
    async with client(app, OWNER_IP) as http:
        token = await log_in(http, username)
        assert (await http.post("/logout", data={"csrf_token": token})).status_code == 303
        device = http.cookies["admin_device"]
    return device


async def seed_failures(
    conn: asyncpg.Connection,
    count: int,
    *,
    username: str,
    ip: str,
    device: str | None = None,
    spread_ips: bool = False,
    spread_usernames: bool = False,
) -> None:
    """`count` failed attempts made just now (ip/username suffixed by a number when spread)."""
    await conn.execute(
        "INSERT INTO login_attempts (username, ip, device, succeeded)"
        " SELECT CASE WHEN $5 THEN $1 || g ELSE $1 END, CASE WHEN $4 THEN $2 || g ELSE $2 END,"
        " $3, false FROM generate_series(1, $6) AS g",
        username,
        ip,
        device,
        spread_ips,
        spread_usernames,
        count,
    )


async def age_attempts(conn: asyncpg.Connection, seconds: float) -> None:
    await conn.execute(
        "UPDATE login_attempts SET at = at - make_interval(secs => $1)", float(seconds)
    )


def retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert "Too many failed logins" in response.text
    return int(response.headers["retry-after"])


async def hammer_until_refused(http: httpx.AsyncClient, username: str) -> httpx.Response:
    """Wrong passwords until one is refused; the backoff doubles, so one soon is."""
    for number in range(20):
        response = await attempt(http, username, f"guess number {number}")
        if response.status_code == 429:
            return response
        assert response.status_code == 401
    raise AssertionError("twenty wrong passwords in a row were never throttled")


# ---- what the audit log keeps of a failed login


async def test_a_password_typed_as_username_is_not_kept_in_the_audit_log(app, conn):
    await create_staff(conn, "clerk")
    async with client(app, "10.13.0.1") as http:
        assert (await attempt(http, STAFF_PASSWORD, STAFF_PASSWORD)).status_code == 401
        assert (await attempt(http, "clerk", "wrong password")).status_code == 401
    rows = await conn.fetch("SELECT audit_log::text AS row, staff_username FROM audit_log")
    assert [row["staff_username"] for row in rows] == [None, "clerk"]
    assert not any(STAFF_PASSWORD in row["row"] for row in rows)


# ---- redirects to what was typed


@pytest.mark.parametrize("target", ["/users?q=ü€😀", "/users?q=a b\u00a0c", "/orders/ü"])
async def test_any_local_next_survives_an_htmx_login(app, conn, target):
    await create_staff(conn, "clerk")
    async with client(app, "10.14.0.1") as http:
        page = await http.get("/login", params={"next": target})
        response = await http.post(
            "/login",
            headers={"HX-Request": "true"},
            data={
                "username": "clerk",
                "password": STAFF_PASSWORD,
                "csrf_token": csrf_from(page.text),
                "next": target,
            },
        )
        assert response.status_code == 200
        assert response.headers["hx-redirect"].isascii()
        assert unquote(response.headers["hx-redirect"]) == target
        # logged in already: the login page sends the member on the same way
        again = await http.get("/login", params={"next": target}, headers={"HX-Request": "true"})
        assert unquote(again.headers["hx-redirect"]) == target
        plain = await http.get("/login", params={"next": target})
        assert plain.status_code == 303 and unquote(plain.headers["location"]) == target


# ---- who sees a link to the audit log


async def test_only_admins_see_history_links_on_show_pages(app, conn, staff_client, admin_client):
    user_id = await conn.fetchval(
        "INSERT INTO users (username, email) VALUES ('buyer', 'buyer@example.com') RETURNING id"
    )
    order_id = await conn.fetchval(
        "INSERT INTO orders (user_id, total) VALUES ($1, 5) RETURNING id", user_id
    )
    for path in (f"/users/{user_id}", f"/orders/{order_id}"):
        staff_page = await staff_client.get(path)
        assert staff_page.status_code == 200
        assert "/audit" not in staff_page.text
        admin_page = await admin_client.get(path)
        resource = path.split("/")[1]
        assert f"/audit?resource={resource}&amp;resource_id={path.split('/')[2]}" in admin_page.text
        link = admin_page.text.split("/audit?", 1)[1].split('"', 1)[0].replace("&amp;", "&")
        assert (await admin_client.get("/audit?" + link)).status_code == 200


# ---- the first run of `serve`


@pytest.mark.slow
async def test_first_run_does_not_print_a_password_taken_from_the_environment(
    database_url: str, tmp_path: Path, conn: asyncpg.Connection
):
    chosen = "a chosen admin password"
    env = cli_env(
        DATABASE_URL=database_url,
        SECRET_KEY=TEST_SECRET_KEY,
        ADMIN_DATA_DIR=str(tmp_path),
        ADMIN_PASSWORD=chosen,
    )
    serving = start_serve(env, tmp_path)
    assert serving.stop() == 0
    output = "".join(serving.output)
    assert "First run: created 'admin' with the password from ADMIN_PASSWORD." in output
    assert chosen not in output and chosen not in serving.stderr()
    stored = await conn.fetchval("SELECT password_hash FROM staff WHERE username = 'admin'")
    assert verify_password(stored, chosen)
