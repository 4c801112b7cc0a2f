"""Abuse probes on logins: an attacker can slow an account's guessing, never keep its owner out.

Clients are told apart by the client address of the ASGI transport, as a server without
proxy headers sees them. Failures an attacker would need many requests for are seeded
straight into login_attempts, so no assertion depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote

import asyncpg
import httpx
import pytest

from admin.staff import throttle
from admin.staff.login import LOGIN_FAILED
from admin.staff.passwords import verify_password
from tests.cli import cli_env, start_serve
from tests.conftest import (
    STAFF_PASSWORD,
    TEST_SECRET_KEY,
    client_at,
    create_staff,
    csrf_from,
    log_in,
    login_attempt,
)
from tests.snapshot import snapshot

OWNER_IP = "10.1.0.1"


async def returning_owner_device(app, username: str = "clerk") -> str:  # type: ignore[no-untyped-def]
    """Log in and out as `username` from OWNER_IP; the device cookie this browser keeps."""
    async with client_at(app, OWNER_IP) as http:
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
    username = throttle.subject(TEST_SECRET_KEY, username)
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
        response = await login_attempt(http, username, f"guess number {number}")
        if response.status_code == 429:
            return response
        assert response.status_code == 401
    raise AssertionError("twenty wrong passwords in a row were never throttled")


# ---- one address hammering


async def test_hammering_from_one_ip_slows_the_attacker_not_the_owner(app, conn):
    await create_staff(conn, "clerk")
    device = await returning_owner_device(app)
    async with client_at(app, "10.6.6.6") as attacker:
        for number in range(throttle.PAIR_FREE_FAILURES):
            assert (
                await login_attempt(attacker, "clerk", f"free guess {number}")
            ).status_code == 401
        refused = await hammer_until_refused(attacker, "clerk")
        assert 0 < retry_after(refused) <= throttle.BACKOFF_MAX_S
    # however many more it had made, the owner's browser is judged by its own failures only,
    # from home or from the attacker's very address (one office behind one NAT)
    await seed_failures(conn, 50, username="clerk", ip="10.6.6.6")
    for ip in (OWNER_IP, "10.6.6.6"):
        async with client_at(app, ip, device) as owner:
            assert (await login_attempt(owner, "clerk", STAFF_PASSWORD)).status_code == 303


async def test_a_success_restarts_the_count_of_its_username_and_address(app, conn):
    await create_staff(conn, "clerk")
    await seed_failures(conn, 6, username="clerk", ip="10.2.0.1")
    await age_attempts(conn, 120)  # the last backoff (8 s) is long over
    async with client_at(app, "10.2.0.1") as http:
        token = await log_in(http, "clerk")
        await http.post("/logout", data={"csrf_token": token})
        http.cookies.delete("admin_device")
        # without the success these would wait 8, 16, 32 s; after it, they are free again
        for number in range(throttle.PAIR_FREE_FAILURES):
            assert (await login_attempt(http, "clerk", f"typo {number}")).status_code == 401


async def test_retry_after_is_the_rest_of_the_backoff(app, conn):
    await create_staff(conn, "clerk")
    failures = throttle.PAIR_FREE_FAILURES + 5  # the next attempt waits 32 s after the last
    await seed_failures(conn, failures, username="clerk", ip="10.2.0.2")
    await age_attempts(conn, 10)
    async with client_at(app, "10.2.0.2") as http:
        before = await snapshot(conn)
        refused = await login_attempt(http, "clerk", STAFF_PASSWORD)
        # what is left of the 32 s (less however long the request took), not a fixed lock
        assert 12 <= retry_after(refused) <= 22
        assert await snapshot(conn) == before  # a refused attempt is not written
        await age_attempts(conn, 23)
        assert (await login_attempt(http, "clerk", STAFF_PASSWORD)).status_code == 303


# ---- many addresses guessing one username


async def test_guessing_from_many_ips_slows_the_username_but_not_its_owner(app, conn):
    await create_staff(conn, "clerk")
    device = await returning_owner_device(app)
    statuses = []
    for number in range(throttle.USERNAME_FREE_FAILURES + 12):
        async with client_at(app, f"10.7.{number}.1") as bot:
            statuses.append((await login_attempt(bot, "clerk", f"guess {number}")).status_code)
    assert statuses[: throttle.USERNAME_FREE_FAILURES] == [401] * throttle.USERNAME_FREE_FAILURES
    assert 429 in statuses  # each address failed once: only the username-wide backoff applies
    await seed_failures(conn, 200, username="clerk", ip="10.7.200.", spread_ips=True)
    for ip in (OWNER_IP, "10.7.0.1", "192.0.2.99"):
        async with client_at(app, ip, device) as owner:
            assert (await login_attempt(owner, "clerk", STAFF_PASSWORD)).status_code == 303


async def test_a_fresh_device_waits_a_bounded_time_never_a_lock(app, conn):
    await create_staff(conn, "clerk")
    await seed_failures(conn, 300, username="clerk", ip="10.3.", spread_ips=True)
    await seed_failures(conn, 40, username="clerk", ip="10.3.9.9")
    async with client_at(app, "10.3.9.9") as fresh:
        assert 0 < retry_after(await login_attempt(fresh, "clerk", STAFF_PASSWORD)) <= 300
        await age_attempts(conn, throttle.BACKOFF_MAX_S + 1)
        assert (await login_attempt(fresh, "clerk", STAFF_PASSWORD)).status_code == 303


async def test_a_known_device_is_judged_by_its_own_failures(app, conn):
    await create_staff(conn, "clerk")
    cookie = await returning_owner_device(app)
    async with client_at(app, OWNER_IP, cookie) as owner:
        assert (await login_attempt(owner, "clerk", "a typo")).status_code == 401
        device = await conn.fetchval(
            "SELECT device FROM login_attempts WHERE NOT succeeded ORDER BY id DESC LIMIT 1"
        )
        assert device is not None
        await seed_failures(conn, 20, username="clerk", ip=OWNER_IP, device=device)
        assert 0 < retry_after(await login_attempt(owner, "clerk", STAFF_PASSWORD)) <= 300
    # the device's failures do not slow the username anywhere else
    async with client_at(app, "10.4.0.1") as elsewhere:
        assert (await login_attempt(elsewhere, "clerk", STAFF_PASSWORD)).status_code == 303


async def test_a_device_cookie_helps_only_its_own_username_and_only_untampered(app, conn):
    await create_staff(conn, "clerk")
    await create_staff(conn, "boss", "admin")
    device = await returning_owner_device(app, "clerk")
    await seed_failures(conn, 200, username="boss", ip="10.5.", spread_ips=True)
    async with client_at(app, OWNER_IP, device) as other_member:
        assert retry_after(await login_attempt(other_member, "boss", STAFF_PASSWORD)) > 0
    await seed_failures(conn, 200, username="clerk", ip="10.5.", spread_ips=True)
    forged = device[:-4] + ("AAAA" if device[-4:] != "AAAA" else "BBBB")
    async with client_at(app, OWNER_IP, forged) as tampered:
        assert retry_after(await login_attempt(tampered, "clerk", STAFF_PASSWORD)) > 0


async def test_login_sets_a_long_lived_httponly_device_cookie(app, conn):
    await create_staff(conn, "clerk")
    for base_url, secure in (("http://testserver", False), ("https://testserver", True)):
        transport = httpx.ASGITransport(app=app, client=("10.4.4.4", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            page = await http.get("/login")
            response = await http.post(
                "/login",
                data={
                    "username": "clerk",
                    "password": STAFF_PASSWORD,
                    "csrf_token": csrf_from(page.text),
                },
            )
            assert response.status_code == 303
            [device] = [
                header.lower()
                for header in response.headers.get_list("set-cookie")
                if header.startswith("admin_device=")
            ]
            assert "httponly" in device and "samesite=lax" in device
            assert "max-age=31536000" in device
            assert ("secure" in device) is secure


# ---- one address, many usernames


async def test_an_office_behind_one_address_is_not_locked_by_a_few_typos(app, conn):
    await create_staff(conn, "clerk")
    async with client_at(app, "10.10.0.1") as office:
        for colleague in range(15):
            for _ in range(2):
                response = await login_attempt(office, f"colleague{colleague}", "typo")
                assert response.status_code == 401
        assert (await login_attempt(office, "clerk", STAFF_PASSWORD)).status_code == 303


async def test_the_ip_ceiling_stops_an_address_spraying_usernames(app, conn):
    await create_staff(conn, "clerk")
    device = await returning_owner_device(app)
    spraying = "10.11.0.1"
    await seed_failures(
        conn, throttle.IP_MAX_FAILURES - 1, username="sprayed", ip=spraying, spread_usernames=True
    )
    async with client_at(app, spraying) as sprayer:
        assert (await login_attempt(sprayer, "one.more", "guess")).status_code == 401
        wait = retry_after(await login_attempt(sprayer, "clerk", STAFF_PASSWORD))
        assert 0 < wait <= throttle.IP_WINDOW.total_seconds()
    # the owner's browser passes the ceiling, and its success launders nothing
    async with client_at(app, spraying, device) as owner_there:
        assert (await login_attempt(owner_there, "clerk", STAFF_PASSWORD)).status_code == 303
    async with client_at(app, spraying) as sprayer:
        assert retry_after(await login_attempt(sprayer, "another", "guess")) > 0
    async with client_at(app, "10.11.0.2") as elsewhere:
        assert (await login_attempt(elsewhere, "clerk", STAFF_PASSWORD)).status_code == 303


async def test_concurrent_attempts_cannot_slip_past_the_ceiling(app, conn):
    spraying = "10.12.0.1"
    await seed_failures(
        conn, throttle.IP_MAX_FAILURES - 1, username="sprayed", ip=spraying, spread_usernames=True
    )
    sprayers = [client_at(app, spraying) for _ in range(3)]
    try:
        responses = await asyncio.gather(
            *(login_attempt(http, f"racer{n}", "guess") for n, http in enumerate(sprayers))
        )
    finally:
        for http in sprayers:
            await http.aclose()
    assert sorted(response.status_code for response in responses) == [401, 429, 429]
    written = await conn.fetchval("SELECT count(*) FROM login_attempts WHERE ip = $1", spraying)
    assert written == throttle.IP_MAX_FAILURES


# ---- what a throttled attempt tells


async def test_throttling_does_not_tell_which_usernames_exist(app, conn):
    await create_staff(conn, "clerk")
    for username in ("clerk", "nobody"):
        await seed_failures(conn, 40, username=username, ip="10.13.", spread_ips=True)
    async with client_at(app, "10.13.9.9") as http:
        known = await login_attempt(http, "clerk", "a guess")
        unknown = await login_attempt(http, "nobody", "a guess")
    assert abs(retry_after(known) - retry_after(unknown)) <= 1
    known_text = known.text.replace("clerk", "X").replace(csrf_from(known.text), "T")
    unknown_text = unknown.text.replace("nobody", "X").replace(csrf_from(unknown.text), "T")
    assert known_text == unknown_text
    assert LOGIN_FAILED not in known_text


# ---- what the audit log keeps of a failed login


async def test_a_password_typed_as_username_is_kept_nowhere(app, conn):
    await create_staff(conn, "clerk")
    async with client_at(app, "10.13.0.1") as http:
        assert (await login_attempt(http, STAFF_PASSWORD, STAFF_PASSWORD)).status_code == 401
        assert (await login_attempt(http, "clerk", "wrong password")).status_code == 401
    rows = await conn.fetch("SELECT audit_log::text AS row, staff_username FROM audit_log")
    assert [row["staff_username"] for row in rows] == [None, "clerk"]
    assert not any(STAFF_PASSWORD in row["row"] for row in rows)
    # nor in the throttle's table, which counts it all the same
    attempts = await conn.fetch("SELECT login_attempts::text AS row FROM login_attempts")
    assert len(attempts) == 2
    assert not any(STAFF_PASSWORD in row["row"] or "clerk" in row["row"] for row in attempts)


# ---- redirects to what was typed


@pytest.mark.parametrize("target", ["/users?q=ü€😀", "/users?q=a b\u00a0c", "/orders/ü"])
async def test_any_local_next_survives_an_htmx_login(app, conn, target):
    await create_staff(conn, "clerk")
    async with client_at(app, "10.14.0.1") as http:
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


# ---- a record's history: for whoever may view the record; the audit log stays for admins


async def test_record_pages_link_their_history_not_the_admin_audit_log(
    app, conn, staff_client, admin_client
):
    user_id = await conn.fetchval(
        "INSERT INTO users (username, email) VALUES ('buyer', 'buyer@example.com') RETURNING id"
    )
    order_id = await conn.fetchval(
        "INSERT INTO orders (user_id, total) VALUES ($1, 5) RETURNING id", user_id
    )
    for path in (f"/users/{user_id}", f"/orders/{order_id}"):
        for client in (staff_client, admin_client):
            page = await client.get(path)
            assert page.status_code == 200
            assert "/audit?" not in page.text
            assert f'href="{path}/history"' in page.text
            assert (await client.get(f"{path}/history")).status_code == 200
        assert (await staff_client.get("/audit")).status_code == 403


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
