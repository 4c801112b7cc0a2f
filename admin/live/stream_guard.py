"""Open live streams follow their login: a role change, a deactivation, a password reset,
"log out everywhere" or a plain logout reaches a stream that is already open.

A request checks its session once, when it starts; a stream lasts for hours. So every
process re-checks the logins behind its open streams every `INTERVAL` seconds, with one
query for all of them, and closes each stream whose member is gone, inactive, has a new
session version, a revoked session or another role. Closing is enough: the browser
reconnects with its last event id, and the new request is checked like any other, so a
narrower role resumes with a narrower stream (and its replay filtered the new way) and an
ended session gets no stream at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import asyncpg
from starlette.requests import Request

from admin.background import Background
from admin.db import CONNECTION_FAILURES, DatabaseUnavailable
from admin.live.hub import Subscription

log = logging.getLogger("admin.stream_guard")

INTERVAL = 2.0
REASON = "login changed"

_CHECK = """
SELECT s.staff_id, s.session_id
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[])
    AS s(staff_id, session_id, role, version)
LEFT JOIN staff m ON m.id = s.staff_id
WHERE m.id IS NULL OR NOT m.is_active OR m.role <> s.role OR m.session_version <> s.version
   OR EXISTS (SELECT 1 FROM revoked_sessions r WHERE r.id = s.session_id)
"""


@dataclass(frozen=True, slots=True)
class Login:
    """What a stream was opened under."""

    staff_id: int
    session_id: str
    role: str
    version: int


class StreamGuard(Background):
    """Register each stream with the login it was opened under; `start()` once per process."""

    task_name = "stream-guard"

    def __init__(
        self,
        acquire: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]],
        interval: float = INTERVAL,
    ) -> None:
        super().__init__()
        self._acquire = acquire
        self._interval = interval
        self._streams: dict[Login, set[Subscription]] = {}

    def watch(self, login: Login, subscription: Subscription) -> None:
        self._streams.setdefault(login, set()).add(subscription)

    def forget(self, login: Login, subscription: Subscription) -> None:
        held = self._streams.get(login)
        if held is not None:
            held.discard(subscription)
            if not held:
                del self._streams[login]

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if not self._streams:
                continue
            try:
                await self.check()
            except (
                TimeoutError,
                DatabaseUnavailable,
                asyncpg.PostgresError,
                *CONNECTION_FAILURES,
            ) as exc:
                # the database is away: the streams' own hub notices that, and the next
                # round checks again
                log.warning("cannot check the logins of open streams: %s", exc)
            except Exception:
                log.exception("checking the logins of open streams failed")

    async def check(self) -> int:
        """Close the streams whose login changed; returns how many were closed."""
        logins = list(self._streams)
        async with self._acquire() as conn:
            rows = await conn.fetch(
                _CHECK,
                [x.staff_id for x in logins],
                [x.session_id for x in logins],
                [x.role for x in logins],
                [x.version for x in logins],
            )
        ended = {(row["staff_id"], row["session_id"]) for row in rows}
        closed = 0
        for login in logins:
            if (login.staff_id, login.session_id) in ended:
                for subscription in self._streams.pop(login, ()):
                    subscription.close(REASON)
                    closed += 1
        return closed


def login_of(request: Request) -> Login:
    """The login a staff route's request runs under."""
    member = request.state.staff
    session = request.state.session
    return Login(member.id, session.session_id or "", member.role, session.staff_version)
