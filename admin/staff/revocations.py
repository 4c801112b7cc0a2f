"""Sessions ended by "Log out", so that a copy of that one cookie is refused too.

The per-request check is part of the staff lookup (staff.get_for_session), not a query of
its own. Rows are kept until the session's absolute expiry, when the cookie is refused
anyway; each logout prunes the ones past it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg


async def revoke(conn: asyncpg.Connection, session_id: str, expires_at: float) -> None:
    await conn.execute(
        "INSERT INTO revoked_sessions (id, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        session_id,
        datetime.fromtimestamp(expires_at, UTC),
    )
    await conn.execute("DELETE FROM revoked_sessions WHERE expires_at < now()")
