"""/account: a member changes their own password; other sessions end, this one stays."""

from __future__ import annotations

import httpx
import pytest

from admin.staff import throttle
from admin.staff.passwords import verify_password
from tests.conftest import STAFF_PASSWORD, LoggedIn, log_in
from tests.snapshot import snapshot


def change(current: str, new: str, confirm: str | None = None) -> dict[str, str]:
    return {
        "current_password": current,
        "new_password": new,
        "confirm_password": new if confirm is None else confirm,
    }


async def test_account_page_shows_the_member(staff_client: LoggedIn):
    page = await staff_client.get("/account")
    assert page.status_code == 200
    assert "clerk" in page.text and 'name="current_password"' in page.text


async def test_changing_the_password_ends_other_sessions_only(app, staff_client: LoggedIn, conn):
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    async with other:
        await log_in(other, "clerk")
        response = await staff_client.post(
            "/account/password", change(STAFF_PASSWORD, "a new secret pass")
        )
        assert response.status_code == 303 and response.headers["location"] == "/account"
        assert (await staff_client.get("/account")).status_code == 200
        assert (await other.get("/")).status_code == 303
    stored = await conn.fetchval(
        "SELECT password_hash FROM staff WHERE id = $1", staff_client.staff_id
    )
    assert verify_password(stored, "a new secret pass")
    entry = await conn.fetchrow(
        "SELECT action, resource, resource_id FROM audit_log ORDER BY id DESC LIMIT 1"
    )
    assert dict(entry) == {
        "action": "password_change",
        "resource": "staff",
        "resource_id": str(staff_client.staff_id),
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (change("wrong current pass", "a new secret pass"), "not your current password"),
        (change("", "a new secret pass"), "Enter your current password."),
        (change(STAFF_PASSWORD, "short"), "at least 10"),
        (change(STAFF_PASSWORD, "n" * 1025), "at most 1024"),
        (change(STAFF_PASSWORD, "a new secret pass", "another pass!"), "differ"),
    ],
)
async def test_bad_password_changes_write_nothing(staff_client: LoggedIn, conn, fields, message):
    before = await conn.fetchval("SELECT md5(password_hash || session_version) FROM staff")
    audit = await snapshot(conn)
    response = await staff_client.post("/account/password", fields)
    assert response.status_code == 422
    assert message in response.text
    assert await conn.fetchval("SELECT md5(password_hash || session_version) FROM staff") == before
    assert (await snapshot(conn))["audit_log"] == audit["audit_log"]
    assert (await staff_client.get("/account")).status_code == 200


async def test_guessing_the_current_password_is_throttled(staff_client: LoggedIn, conn):
    for _ in range(throttle.DEVICE_FREE_FAILURES):
        response = await staff_client.post(
            "/account/password", change("a wrong guess!", "a new secret pass")
        )
        assert response.status_code == 422
    # more wrong guesses, just now, from the same browser: the backoff runs for a while
    await conn.execute(
        "INSERT INTO login_attempts (username, ip, device, succeeded)"
        " SELECT username, ip, device, false FROM login_attempts, generate_series(1, 5)"
        " WHERE id = (SELECT max(id) FROM login_attempts)"
    )
    before = await conn.fetchval("SELECT md5(password_hash || session_version) FROM staff")
    refused = await staff_client.post(
        "/account/password", change(STAFF_PASSWORD, "a new secret pass")
    )
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert await conn.fetchval("SELECT md5(password_hash || session_version) FROM staff") == before
