"""Data someone else holds locked (a table being altered, a row in a long transaction):
the panel's requests give up after LOCK_TIMEOUT_MS with a 503 and Retry-After, write
nothing, and leave the pool to everyone else; an import waits its turn instead."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from admin import db
from admin.app import close_pool, create_app
from admin.settings import Settings
from tests.browser_forms import form_dict
from tests.conftest import LoggedIn, _logged_in
from tests.test_user_forms import form_of, make_user

LOCK_MS = 300
# through PgBouncer the timeout is its connect_query's (deploy/pgbouncer.ini), not LOCK_MS
ANSWER_WITHIN_S = 15

BUSY = """
CREATE TABLE busy (id serial PRIMARY KEY, note text NOT NULL);
INSERT INTO busy (note) SELECT 'note ' || g FROM generate_series(1, 30) g;
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, lock_timeout_ms=LOCK_MS, catalog_check_s=0.0)


@asynccontextmanager
async def holding(database_url: str, *statements: str) -> AsyncIterator[None]:
    """A transaction of someone else's (not the panel's pool) holding what `statements` lock."""
    other = await asyncpg.connect(database_url)
    try:
        async with other.transaction():
            for statement in statements:
                await other.execute(statement)
            yield
    finally:
        await other.close()


def assert_busy(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 503, response.text[:500]
    assert response.headers["retry-after"] == "2"
    assert "locked by another change" in response.text


async def test_pages_of_a_table_being_altered_answer_503_and_leave_the_pool_free(
    admin_client: LoggedIn, conn: asyncpg.Connection, database_url: str, settings: Settings
) -> None:
    await conn.execute(BUSY)
    assert (await admin_client.get("/busy")).status_code == 200
    form = form_dict((await admin_client.get("/busy/1/edit")).text)
    async with holding(database_url, "ALTER TABLE busy ADD COLUMN extra text"):
        # more readers than the pool has connections: each gives up, none holds one for long
        readers = [admin_client.get("/busy") for _ in range(settings.pool_max_size + 2)]
        answers = await asyncio.wait_for(asyncio.gather(*readers), ANSWER_WITHIN_S)
        if settings.database_pooler:
            # PgBouncer's lock timeout (3 s) outlasts the tests' acquire timeout (2 s): the
            # readers that found no free connection hear that every one is busy instead
            for answer in answers:
                assert answer.status_code == 503 and answer.headers["retry-after"] == "2"
            assert any("locked by another change" in a.text for a in answers)
        else:
            for answer in answers:
                assert_busy(answer)
        assert_busy(await asyncio.wait_for(admin_client.get("/busy/1"), ANSWER_WITHIN_S))
        # a search or a form sent by htmx: the message alone, for the page's flash area
        fragment = await admin_client.get("/busy?q=note", headers={"HX-Request": "true"})
        assert_busy(fragment)
        assert fragment.headers["hx-retarget"] == "#flashes"
        assert fragment.headers["hx-push-url"] == "false"
        assert fragment.text.startswith('<p class="flash flash-error" role="alert">')
        assert "<html" not in fragment.text
        # a link followed (boosted): the whole error page, as without htmx
        followed = await admin_client.get(
            "/busy", headers={"HX-Request": "true", "HX-Boosted": "true"}
        )
        assert_busy(followed)
        assert "<html" in followed.text and "hx-retarget" not in followed.headers
        saved = await asyncio.wait_for(
            admin_client.post("/busy/1", {**form, "note": "changed"}), ANSWER_WITHIN_S
        )
        assert_busy(saved)
        # other tables are served all along
        assert (await asyncio.wait_for(admin_client.get("/users"), 10)).status_code == 200
    page = await admin_client.get("/busy")
    assert page.status_code == 200 and "note 1" in page.text
    assert await conn.fetchval("SELECT count(*) FROM busy WHERE note = 'changed'") == 0


async def test_an_edit_of_a_row_a_long_transaction_holds_answers_503_and_writes_nothing(
    admin_client: LoggedIn, conn: asyncpg.Connection, database_url: str
) -> None:
    alice = await make_user(conn)
    held = f"SELECT * FROM users WHERE id = {alice['id']} FOR UPDATE"
    async with holding(database_url, held):
        saved = await asyncio.wait_for(
            admin_client.post(f"/users/{alice['id']}", form_of(alice, full_name="Alice L")),
            ANSWER_WITHIN_S,
        )
        assert_busy(saved)
        # the record page reads without a lock: it still opens
        assert (await admin_client.get(f"/users/{alice['id']}")).status_code == 200
    row = await conn.fetchrow("SELECT * FROM users WHERE id = $1", alice["id"])
    assert row["full_name"] == "Alice" and row["version"] == alice["version"]
    assert not await conn.fetch("SELECT 1 FROM audit_log WHERE action = 'update'")
    # the same form goes through once the row is free: the version was never spent
    again = await admin_client.post(f"/users/{alice['id']}", form_of(alice, full_name="Alice L"))
    assert again.status_code == 303


async def test_a_statement_past_its_timeout_answers_503_not_500(
    conn: asyncpg.Connection, database_url: str, settings: Settings
) -> None:
    if settings.database_pooler:
        pytest.skip("through PgBouncer the timeouts are its connect_query's")
    await conn.execute(BUSY)
    # no lock timeout: the read waits until its own statement timeout cancels it
    patient = dataclasses.replace(settings, lock_timeout_ms=0, statement_timeout_ms=LOCK_MS)
    pool = await db.create_pool(patient)
    try:
        client = await _logged_in(create_app(patient, pool=pool), conn, "patient", "admin")
        assert (await client.get("/busy")).status_code == 200
        async with holding(database_url, "LOCK TABLE busy IN ACCESS EXCLUSIVE MODE"):
            page = await asyncio.wait_for(client.get("/busy"), ANSWER_WITHIN_S)
            assert page.status_code == 503, page.text[:500]
            assert page.headers["retry-after"] == "2"
            assert "took too long" in page.text
        assert (await client.get("/busy")).status_code == 200
        await client.http.aclose()
    finally:
        await close_pool(pool)


@pytest.mark.parametrize(
    "held",
    [
        # blocks the import's inserts, not the catalog read nor the page reads
        "LOCK TABLE busy IN SHARE MODE",
        "ALTER TABLE busy ADD COLUMN extra text",
    ],
)
async def test_an_import_waits_for_a_lock_longer_than_the_timeout(
    admin_client: LoggedIn, conn: asyncpg.Connection, database_url: str, held: str
) -> None:
    await conn.execute(BUSY)
    assert (await admin_client.get("/busy")).status_code == 200
    async with holding(database_url, held):
        importing = asyncio.create_task(
            admin_client.http.post(
                "/busy/import",
                content=b"note\nimported one\nimported two\n",
                headers={
                    "Content-Type": "text/csv",
                    "X-CSRF-Token": admin_client.csrf,
                    "Accept": "application/json",
                },
            )
        )
        await asyncio.sleep(LOCK_MS * 4 / 1000)
        assert not importing.done()
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'busy'::regclass"
        )
        assert waiting >= 1
    answer = await asyncio.wait_for(importing, ANSWER_WITHIN_S)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == 2
    assert await conn.fetchval("SELECT count(*) FROM busy WHERE note LIKE 'imported%'") == 2


async def test_an_export_of_a_table_being_altered_answers_503_before_any_byte(
    admin_client: LoggedIn, conn: asyncpg.Connection, database_url: str
) -> None:
    await conn.execute(BUSY)

    async def export():  # type: ignore[no-untyped-def]
        return await admin_client.get("/busy/export.csv", headers={"Sec-Fetch-Site": "same-origin"})

    assert (await export()).headers["content-type"].startswith("text/csv")
    async with holding(database_url, "ALTER TABLE busy ADD COLUMN extra text"):
        refused = await asyncio.wait_for(export(), ANSWER_WITHIN_S)
        assert_busy(refused)
        assert "note 1" not in refused.text
    again = await export()
    assert again.status_code == 200 and "note 30" in again.text
