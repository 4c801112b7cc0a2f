"""A bulk action over many matching records runs a batch per request, with progress; it can
be stopped between batches (what was done is said and stays done), and undone as a whole."""

from __future__ import annotations

import html
import re

import pytest

from admin.resources import bulk_batches
from tests.conftest import LoggedIn


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_batches, "BATCH_SIZE", 10)


async def _users(conn, n: int = 25) -> list[int]:  # type: ignore[no-untyped-def]
    rows = await conn.fetch(
        "INSERT INTO users (username, email, full_name) SELECT 'user' || g,"
        " 'user' || g || '@example.com', 'P' FROM generate_series(1, $1) AS g RETURNING id",
        n,
    )
    return [r["id"] for r in rows]


def _next_form(text: str) -> dict[str, str]:
    form = re.search(r"<form[^>]*data-bulk-next.*?</form>", text, re.S)
    assert form, "no next-batch form"
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(0))
    return {k: html.unescape(v) for k, v in fields if k != "csrf_token"}


def _progress(text: str) -> str:
    match = re.search(r'<p role="status"><strong>([^<]+)</strong>', text)
    assert match
    return match.group(1)


async def test_many_records_change_a_batch_at_a_time_then_undo_covers_them_all(
    staff_client: LoggedIn, conn
) -> None:
    await _users(conn)
    confirm = await staff_client.post(
        "/users/bulk", {"action": "deactivate", "scope": "all", "sort": "email"}
    )
    assert "runs in batches of 10" in confirm.text
    forms = re.findall(r'<form method="post" action="/users/bulk">.*?</form>', confirm.text, re.S)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', forms[-1]))
    assert fields["batched"] == "1" and fields["total"] == "25"
    fields.pop("csrf_token")
    step = await staff_client.post("/users/bulk", fields, headers={"HX-Request": "true"})
    assert step.status_code == 200 and _progress(step.text) == "10 of 25"
    assert "<h1>" not in step.text  # the fragment the progress page swaps in
    assert await conn.fetchval("SELECT count(*) FROM users WHERE NOT is_active") == 10
    step = await staff_client.post("/users/bulk", _next_form(step.text))
    assert _progress(step.text) == "20 of 25"
    done = await staff_client.post("/users/bulk", _next_form(step.text))
    assert done.status_code == 303
    assert "sort=email" in done.headers["location"]
    assert await conn.fetchval("SELECT count(*) FROM users WHERE NOT is_active") == 25
    page = await staff_client.get(done.headers["location"])
    assert "Deactivate: 25 users changed." in page.text
    batch = re.search(r'name="batch" value="([^"]+)"', page.text)
    assert batch
    await staff_client.post("/users/bulk/undo", {"batch": batch.group(1)})
    assert await conn.fetchval("SELECT count(*) FROM users WHERE NOT is_active") == 0


async def test_stopping_between_batches_says_what_was_done(staff_client: LoggedIn, conn) -> None:
    await _users(conn)
    first = await staff_client.post(
        "/users/bulk",
        {"action": "deactivate", "scope": "all", "confirm": "yes", "batched": "1", "total": "25"},
    )
    assert _progress(first.text) == "10 of 25"
    stopped = await staff_client.post("/users/bulk", {**_next_form(first.text), "stop": "1"})
    assert stopped.status_code == 303
    assert await conn.fetchval("SELECT count(*) FROM users WHERE NOT is_active") == 10
    page = await staff_client.get(stopped.headers["location"])
    assert "Stopped: Deactivate reached 10 of 25 users (10 changed)" in page.text
    assert 'class="undo-bar"' in page.text


async def test_a_batch_that_other_records_refer_to_stops_the_delete(
    staff_client: LoggedIn, conn
) -> None:
    ids = await _users(conn)
    await conn.execute(
        "INSERT INTO orders (user_id, total, status) VALUES ($1, 1, 'paid')", ids[14]
    )
    first = await staff_client.post(
        "/users/bulk",
        {"action": "delete", "scope": "all", "confirm": "yes", "batched": "1", "total": "25"},
    )
    assert _progress(first.text) == "10 of 25"
    stopped = await staff_client.post("/users/bulk", _next_form(first.text))
    assert stopped.status_code == 303
    assert await conn.fetchval("SELECT count(*) FROM users") == 15
    page = await staff_client.get(stopped.headers["location"])
    assert "Stopped after 10 of 25: 10 users deleted. The next 10 were left as they were" in (
        page.text
    )


@pytest.mark.parametrize(
    "bad", [{"done": "-1"}, {"last_key": "x y"}, {"first_audit": "1e9"}, {"total": "9" * 20}]
)
async def test_forged_progress_is_refused(staff_client: LoggedIn, conn, bad) -> None:
    await _users(conn, 3)
    response = await staff_client.post(
        "/users/bulk",
        {"action": "deactivate", "scope": "all", "confirm": "yes", "batched": "1", **bad},
    )
    assert response.status_code == 400
    assert await conn.fetchval("SELECT count(*) FROM users WHERE NOT is_active") == 0
