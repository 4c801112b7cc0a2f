"""The staff member behind each session, remembered between requests while the database can
say when that stops being true.

Every page used to ask the database who the session belongs to (a round trip, about a tenth
of a list page's work). Triggers on `staff` and `revoked_sessions` (migration 012) notify
`admin_staff` on every change there; this process listens and forgets everything it
remembers on each notification. It remembers nothing while it is not listening (before the
first connection, after a connection loss until it listens again) and nothing for longer
than `max_age` (`STAFF_CACHE_S`; 0 turns remembering off), so a notification lost to a dead
connection nobody noticed yet costs at most that long. A lookup that began before a
notification is not remembered after it (`generation`), so a revocation is never
overwritten by the answer it made stale.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from admin.background import Background
from admin.db import CONNECTION_FAILURES
from admin.staff.table import StaffMember

log = logging.getLogger("admin.staff_cache")

CHANNEL = "admin_staff"
POLL_SECONDS = 1.0  # how often the listening connection is checked
MAX_BACKOFF_SECONDS = 5.0
MAX_ENTRIES = 10_000


class StaffCache:
    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._entries: dict[tuple[int, str | None], tuple[StaffMember, float]] = {}
        self.generation = 0
        self.listening = False

    def get(self, staff_id: int, session_id: str | None) -> StaffMember | None:
        if not self.listening:
            return None
        entry = self._entries.get((staff_id, session_id))
        if entry is None or time.monotonic() - entry[1] > self.max_age:
            return None
        return entry[0]

    def put(
        self, staff_id: int, session_id: str | None, member: StaffMember, generation: int
    ) -> None:
        """Remember `member`, looked up when `generation` was current."""
        if not self.listening or generation != self.generation or self.max_age <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[(staff_id, session_id)] = (member, time.monotonic())

    def forget(self, *_: Any) -> None:
        self.generation += 1
        self._entries.clear()

    def stop_listening(self, *_: Any) -> None:
        self.listening = False
        self.forget()


class Listener(Background):
    """The LISTEN connection that keeps a StaffCache honest; reconnects with backoff."""

    task_name = "staff-listener"

    def __init__(self, cache: StaffCache, dsn: str, application_name: str) -> None:
        super().__init__()
        self.cache = cache
        self._dsn = dsn
        self._application_name = application_name

    async def stop(self) -> None:
        await super().stop()
        self.cache.stop_listening()

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn,
                    timeout=5,
                    server_settings={"application_name": self._application_name},
                )
                conn.add_termination_listener(self.cache.stop_listening)
                await conn.add_listener(CHANNEL, self.cache.forget)
                self.cache.forget()
                self.cache.listening = True
                backoff = 0.1
                while True:
                    await asyncio.sleep(POLL_SECONDS)
                    await conn.fetchval("SELECT 1", timeout=POLL_SECONDS)
            except (TimeoutError, asyncpg.PostgresError, *CONNECTION_FAILURES) as exc:
                log.warning("staff cache not listening (retry in %.1fs): %s", backoff, exc)
            finally:
                self.cache.stop_listening()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


def staff_cache(request: HTTPConnection) -> StaffCache | None:
    """The app's cache, or None where nothing listens (an app without its own lifespan)."""
    return getattr(request.app.state, "staff_cache", None)


def start(app: Starlette, dsn: str, application_name: str, max_age: float) -> None:
    cache = app.state.staff_cache = StaffCache(max_age)
    listener = app.state.staff_listener = Listener(cache, dsn, application_name)
    listener.start()


async def stop(app: Starlette) -> None:
    listener: Listener | None = getattr(app.state, "staff_listener", None)
    if listener is not None:
        await listener.stop()
