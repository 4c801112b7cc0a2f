"""Login, logout, sessions and throttling through the real HTTP stack and database."""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import VerifyMismatchError
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from admin.app import create_app
from admin.staff import passwords, throttle
from admin.staff.login import LOGIN_FAILED
from admin.staff.passwords import verify_password
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


def session_cookie_header(response: httpx.Response) -> str:
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith("admin_session=")]
    assert len(cookies) == 1
    return cookies[0].lower()


async def test_login_sets_a_fresh_httponly_lax_session(app, conn):
    await create_staff(conn, "clerk")
    async with client_at(app) as http:
        page = await http.get("/login")
        anonymous_cookie = http.cookies["admin_session"]
        anonymous_csrf = csrf_from(page.text)
        response = await http.post(
            "/login",
            data={"username": "clerk", "password": STAFF_PASSWORD, "csrf_token": anonymous_csrf},
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        header = session_cookie_header(response)
        assert "httponly" in header and "samesite=lax" in header and "secure" not in header
        assert http.cookies["admin_session"] != anonymous_cookie
        home = await http.get("/")
        assert home.status_code == 200
        assert csrf_from(home.text) != anonymous_csrf
    # the cookie from before the login (what an attacker could have planted) stays anonymous
    async with client_at(app) as planted:
        planted.cookies.set("admin_session", anonymous_cookie)
        response = await planted.get("/")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")


async def test_secure_cookies_setting_marks_the_cookie_secure(settings, pool):
    app = create_app(dataclasses.replace(settings, secure_cookies=True), pool=pool)
    async with client_at(app) as http:
        response = await http.get("/login")
        assert "secure" in session_cookie_header(response)


async def test_cookies_are_secure_when_the_request_came_over_https(app, conn):
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        response = await http.get("/login")
        assert "secure" in session_cookie_header(response)


async def test_unknown_username_and_wrong_password_look_the_same(app, conn):
    await create_staff(conn, "clerk")
    async with client_at(app) as http:
        wrong = await login_attempt(http, "clerk", "not the password")
        unknown = await login_attempt(http, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert LOGIN_FAILED in wrong.text and LOGIN_FAILED in unknown.text
    assert wrong.text.replace("clerk", "X") == unknown.text.replace("nobody", "X").replace(
        csrf_from(unknown.text), csrf_from(wrong.text)
    )
    rows = await conn.fetch("SELECT username, succeeded FROM login_attempts ORDER BY id")
    assert [(r["username"], r["succeeded"]) for r in rows] == [
        (throttle.subject(TEST_SECRET_KEY, "clerk"), False),
        (throttle.subject(TEST_SECRET_KEY, "nobody"), False),
    ]
    # what was typed as an unknown username (sometimes a password) is not kept in the log
    audit = await conn.fetch("SELECT action, staff_username FROM audit_log ORDER BY id")
    assert [(r["action"], r["staff_username"]) for r in audit] == [
        ("login_failed", "clerk"),
        ("login_failed", None),
    ]


@pytest.mark.parametrize(
    "hasher",
    [PasswordHasher(), PasswordHasher(time_cost=1, memory_cost=8192, parallelism=2, salt_len=8)],
)
def test_an_unknown_username_costs_a_full_verification_with_the_current_parameters(hasher):
    unmatched = passwords._unmatched_hash(hasher)
    assert extract_parameters(unmatched) == extract_parameters(hasher.hash("anything"))
    # a mismatch, not a malformed hash: that would be refused at once, at no cost
    with pytest.raises(VerifyMismatchError):
        hasher.verify(unmatched, "not-a-real-password")
    assert extract_parameters(passwords._UNMATCHED_HASH) == extract_parameters(
        passwords.hash_password("anything")
    )
    assert verify_password(None, "") is False


async def test_deactivated_member_cannot_log_in(app, conn):
    staff_id = await create_staff(conn, "gone")
    await conn.execute("UPDATE staff SET is_active = false WHERE id = $1", staff_id)
    async with client_at(app) as http:
        response = await login_attempt(http, "gone", STAFF_PASSWORD)
    assert response.status_code == 401
    assert LOGIN_FAILED in response.text


async def test_throttled_logins_are_refused_without_writing_even_with_the_right_password(app, conn):
    await create_staff(conn, "clerk")
    async with client_at(app, "10.0.0.1") as http:
        for _ in range(throttle.PAIR_FREE_FAILURES):
            assert (await login_attempt(http, "clerk", "wrong password")).status_code == 401
        # the last failure was just now: the next attempt is early for any backoff
        await conn.execute(
            "INSERT INTO login_attempts (username, ip, succeeded)"
            " SELECT $1, '10.0.0.1', false FROM generate_series(1, 5)",
            throttle.subject(TEST_SECRET_KEY, "clerk"),
        )
        before = await snapshot(conn)
        refused = await login_attempt(http, "clerk", STAFF_PASSWORD)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= throttle.BACKOFF_MAX_S
    assert "Too many failed logins" in refused.text
    assert await snapshot(conn) == before
    # another username from the same address is not affected
    async with client_at(app, "10.0.0.1") as http:
        assert (await login_attempt(http, "someone", "wrong password")).status_code == 401


@pytest.mark.parametrize(
    "target",
    [
        "//evil.com",
        "https://evil.com",
        "/\\evil.com",
        "javascript:alert(1)",
        "http:/evil.com",
        "/\r\nSet-Cookie:x",
        "\t//evil.com",
    ],
)
async def test_next_never_leaves_the_site(app, conn, target):
    await create_staff(conn, "clerk")
    async with client_at(app) as http:
        page = await http.get("/login", params={"next": target})
        assert 'name="next" value="/"' in page.text
        response = await http.post(
            "/login",
            params={"next": target},
            data={
                "username": "clerk",
                "password": STAFF_PASSWORD,
                "csrf_token": csrf_from(page.text),
                "next": target,
            },
        )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_next_keeps_a_local_path(app, conn):
    await create_staff(conn, "clerk")
    async with client_at(app) as http:
        first = await http.get("/account?tab=1")
        assert first.status_code == 303
        page = await http.get(first.headers["location"])
        response = await http.post(
            "/login",
            data={
                "username": "clerk",
                "password": STAFF_PASSWORD,
                "csrf_token": csrf_from(page.text),
                "next": "/account?tab=1",
            },
        )
    assert response.headers["location"] == "/account?tab=1"


def expired_cookie(payload: dict) -> str:  # type: ignore[type-arg]
    class SignedLongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 9 * 3600

    serializer = URLSafeTimedSerializer(TEST_SECRET_KEY, salt="admin.session", signer=SignedLongAgo)
    return serializer.dumps(payload)


async def test_an_idle_session_expires_and_htmx_gets_hx_redirect(app, conn):
    staff_id = await create_staff(conn, "clerk")
    async with client_at(app) as http:
        payload = {"s": staff_id, "v": 1, "c": "x" * 43, "f": []}
        http.cookies.set("admin_session", expired_cookie(payload))
        plain = await http.get("/account")
        assert plain.status_code == 303
        assert plain.headers["location"] == "/login?next=/account"
        htmx = await http.get(
            "/account",
            headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/account"},
        )
        assert htmx.status_code == 200
        assert htmx.headers["hx-redirect"] == "/login?next=/account"
        assert htmx.content == b""
        before = await snapshot(conn)
        post = await http.post(
            "/account/password",
            headers={"HX-Request": "true", "X-CSRF-Token": "x" * 43},
            data={
                "current_password": STAFF_PASSWORD,
                "new_password": "n" * 12,
                "confirm_password": "n" * 12,
            },
        )
        assert post.status_code == 200 and post.headers["hx-redirect"].startswith("/login")
        assert post.content == b""
        assert await snapshot(conn) == before


async def test_a_tampered_cookie_is_anonymous(app, conn, staff_client):
    cookie = staff_client.http.cookies["admin_session"]
    before = await snapshot(conn)
    async with client_at(app) as http:
        http.cookies.set("admin_session", cookie[:-3] + ("AAA" if cookie[-3:] != "AAA" else "BBB"))
        response = await http.get("/")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
        post = await http.post("/logout", data={"csrf_token": staff_client.csrf})
        assert post.status_code == 303 and post.headers["location"].startswith("/login")
    assert await snapshot(conn) == before


async def test_logout_ends_the_session_and_a_replayed_cookie(app, conn, staff_client):
    cookie = staff_client.http.cookies["admin_session"]
    response = await staff_client.post("/logout")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert (await staff_client.get("/")).status_code == 303
    async with client_at(app) as replay:
        replay.cookies.set("admin_session", cookie)
        assert (await replay.get("/")).status_code == 303
    actions = await conn.fetch("SELECT action FROM audit_log ORDER BY id")
    assert [r["action"] for r in actions] == ["login", "logout"]


async def test_a_bumped_session_version_ends_the_session_on_the_next_request(
    app, conn, staff_client
):
    assert (await staff_client.get("/")).status_code == 200
    await conn.execute(
        "UPDATE staff SET session_version = session_version + 1 WHERE id = $1",
        staff_client.staff_id,
    )
    response = await staff_client.get("/")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    page = await staff_client.get(response.headers["location"])
    assert "Your session has ended" in page.text


async def test_a_login_rehashes_a_password_hashed_with_old_parameters(app, conn):
    old_hash = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(STAFF_PASSWORD)
    staff_id = await create_staff(conn, "clerk")
    await conn.execute("UPDATE staff SET password_hash = $2 WHERE id = $1", staff_id, old_hash)
    async with client_at(app) as http:
        await log_in(http, "clerk")
    stored = await conn.fetchval("SELECT password_hash FROM staff WHERE id = $1", staff_id)
    assert stored != old_hash
    assert verify_password(stored, STAFF_PASSWORD)


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("", STAFF_PASSWORD, "Enter your username and password."),
        ("clerk", "", "Enter your username and password."),
        ("c" * 201, STAFF_PASSWORD, "too long"),
        ("clerk", "p" * 1025, "too long"),
        ("cl\x00erk", STAFF_PASSWORD, "control characters"),
        ("cl\x1berk", STAFF_PASSWORD, "control characters"),
    ],
)
async def test_bad_login_input_is_refused_without_writing(app, conn, username, password, message):
    await create_staff(conn, "clerk")
    before = await snapshot(conn)
    async with client_at(app) as http:
        response = await login_attempt(http, username, password)
    assert response.status_code == 422
    assert message in response.text
    assert await snapshot(conn) == before


def signed_session(payload: dict) -> str:  # type: ignore[type-arg]
    """A session cookie signed just now (so neither idle nor tampered)."""
    return URLSafeTimedSerializer(TEST_SECRET_KEY, salt="admin.session").dumps(payload)


async def test_logout_ends_this_session_only(app, conn, staff_client):
    cookie = staff_client.http.cookies["admin_session"]
    async with client_at(app, "10.0.1.1") as other_device:
        await log_in(other_device, "clerk")
        response = await staff_client.post("/logout")
        assert response.status_code == 303 and response.headers["location"] == "/login"
        assert (await other_device.get("/")).status_code == 200
    # the cookie of the ended session is refused even when copied
    async with client_at(app) as replay:
        replay.cookies.set("admin_session", cookie)
        assert (await replay.get("/")).status_code == 303
    kept_for = await conn.fetchval("SELECT expires_at - now() FROM revoked_sessions")
    assert 23 * 3600 < kept_for.total_seconds() <= 24 * 3600


async def test_logout_everywhere_ends_every_session_of_the_member(
    app, conn, staff_client, admin_client
):
    cookie = staff_client.http.cookies["admin_session"]
    account = await staff_client.get("/account")
    assert 'action="/logout/everywhere"' in account.text
    async with client_at(app, "10.0.1.2") as other_device:
        await log_in(other_device, "clerk")
        response = await staff_client.post("/logout/everywhere")
        assert response.status_code == 303 and response.headers["location"] == "/login"
        assert (await other_device.get("/")).status_code == 303
    assert (await staff_client.get("/")).status_code == 303
    async with client_at(app) as replay:
        replay.cookies.set("admin_session", cookie)
        assert (await replay.get("/")).status_code == 303
    assert (await admin_client.get("/")).status_code == 200  # other members keep theirs
    entry = await conn.fetchrow("SELECT action, staff_id FROM audit_log ORDER BY id DESC LIMIT 1")
    assert dict(entry) == {"action": "logout_everywhere", "staff_id": staff_client.staff_id}


async def test_a_session_ends_at_its_absolute_lifetime_however_active(app, conn, settings):
    staff_id = await create_staff(conn, "clerk")
    lifetime = settings.session_max_hours * 3600
    for logged_in_ago, status in ((lifetime - 3600, 200), (lifetime + 60, 303)):
        payload = {
            "s": staff_id,
            "v": 1,
            "c": "c" * 43,
            "f": [],
            "i": f"session-{logged_in_ago}",
            "t": time.time() - logged_in_ago,
        }
        async with client_at(app) as http:
            http.cookies.set("admin_session", signed_session(payload))
            response = await http.get("/")
            assert response.status_code == status
            if status == 303:
                page = await http.get(response.headers["location"])
                assert "Your session has ended" in page.text
