"""Who a session belongs to is remembered between pages only while changes can be heard."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from admin.staff.cache import StaffCache
from admin.staff.table import StaffMember
from tests.conftest import TEST_SECRET_KEY, create_staff, log_in
from tests.live import live_server

LISTENER = "pg-admin-panel staff"
# long enough that nothing in these tests is forgotten by age: only by what they test
REMEMBER = {"STAFF_CACHE_S": "600"}


async def _listening(conn: asyncpg.Connection) -> None:
    for _ in range(200):
        if await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", LISTENER
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the staff cache never listened")


async def _logged_out_within(http: httpx.AsyncClient, seconds: float) -> bool:
    for _ in range(int(seconds / 0.05)):
        if (await http.get("/users")).status_code != 200:
            return True
        await asyncio.sleep(0.05)
    return False


async def _remembered(http: httpx.AsyncClient) -> None:
    for _ in range(3):  # the first pages may come before the listener listens
        assert (await http.get("/users")).status_code == 200


async def test_a_change_by_any_writer_ends_what_was_remembered(database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(database_url)
    try:
        await create_staff(conn, "kim", "staff")
        with live_server(database_url, TEST_SECRET_KEY, tmp_path, extra_env=REMEMBER) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                await log_in(http, "kim")
                await _listening(conn)
                await _remembered(http)
                # unheard (the trigger is off), a deactivation leaves the remembered member
                await conn.execute("ALTER TABLE staff DISABLE TRIGGER staff_changed")
                await conn.execute("UPDATE staff SET is_active = false WHERE username = 'kim'")
                assert (await http.get("/users")).status_code == 200
                # heard (as every writer is, with the trigger on), it ends the session
                await conn.execute("ALTER TABLE staff ENABLE TRIGGER staff_changed")
                await conn.execute("UPDATE staff SET is_active = false WHERE username = 'kim'")
                assert await _logged_out_within(http, 10)
    finally:
        await conn.close()


async def test_nothing_is_remembered_while_the_listener_is_gone(database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(database_url)
    try:
        await create_staff(conn, "lee", "staff")
        with live_server(database_url, TEST_SECRET_KEY, tmp_path, extra_env=REMEMBER) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                await log_in(http, "lee")
                await _listening(conn)
                await _remembered(http)
                await conn.execute("ALTER TABLE staff DISABLE TRIGGER staff_changed")
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = $1",
                    LISTENER,
                )
                # no notification can come now: losing the listener must be enough
                await conn.execute("UPDATE staff SET is_active = false WHERE username = 'lee'")
                assert await _logged_out_within(http, 10)
                await conn.execute("ALTER TABLE staff ENABLE TRIGGER staff_changed")
    finally:
        await conn.close()


def test_a_lookup_older_than_a_notification_is_not_remembered() -> None:
    cache = StaffCache(max_age=60)
    member = StaffMember(id=1, username="kim", role="staff", is_active=True, session_version=1)
    cache.put(1, "s", member, cache.generation)
    assert cache.get(1, "s") is None  # not listening yet: nothing kept
    cache.listening = True
    started = cache.generation
    cache.forget()  # a notification arrives while the lookup runs
    cache.put(1, "s", member, started)
    assert cache.get(1, "s") is None
    cache.put(1, "s", member, cache.generation)
    assert cache.get(1, "s") == member
    cache.stop_listening()
    assert cache.get(1, "s") is None
    off = StaffCache(max_age=0)
    off.listening = True
    off.put(1, "s", member, off.generation)
    assert off.get(1, "s") is None
