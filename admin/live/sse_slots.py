"""Caps on open event streams: so many per login session, so many per process.

A stream holds a socket, a queue and a share of every release for as long as it is
open, so one session (a script, a tab left reloading) must not be able to open
thousands, and a process must refuse new streams before it runs out of room for them.
"""

from __future__ import annotations

import sys
from collections import Counter

from starlette.exceptions import HTTPException
from starlette.requests import Request

# seconds a refused client waits: a slot frees as soon as any stream of it ends
SESSION_RETRY_AFTER = 10
PROCESS_RETRY_AFTER = 5


def session_key(request: Request) -> str:
    """What identifies one login: its session id, new at every login.
    Interned, so a session's streams share one string however many it holds."""
    session = request.state.session
    return sys.intern(str(session.session_id or session.csrf_token))


class StreamSlots:
    """Counts open streams; `take` answers 429 (session) or 503 (process) past a cap."""

    def __init__(self, per_session: int, per_process: int) -> None:
        self.per_session = per_session
        self.per_process = per_process
        self._by_session: Counter[str] = Counter()
        self.open = 0

    def take(self, key: str) -> None:
        """Reserve a slot for `key`; `release(key)` frees it."""
        if self._by_session[key] >= self.per_session:
            raise HTTPException(
                429,
                f"Too many live streams open for this session (at most {self.per_session}):"
                " close a tab or wait.",
                headers={"Retry-After": str(SESSION_RETRY_AFTER)},
            )
        if self.open >= self.per_process:
            raise HTTPException(
                503,
                "This server holds as many live streams as it can: try again shortly.",
                headers={"Retry-After": str(PROCESS_RETRY_AFTER)},
            )
        self._by_session[key] += 1
        self.open += 1

    def release(self, key: str) -> None:
        self.open -= 1
        self._by_session[key] -= 1
        if self._by_session[key] <= 0:
            del self._by_session[key]
