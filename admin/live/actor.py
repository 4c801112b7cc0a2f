"""Names the staff member behind a write, for the change capture (`admin.actor`)."""

from __future__ import annotations

import asyncpg
from starlette.requests import Request

from admin.access import current_staff


async def mark(request: Request, conn: asyncpg.Connection) -> None:
    """Call inside the write's transaction: the setting ends with it (safe behind a
    transaction pooler); the capture triggers record it as who made each change."""
    await conn.execute(
        "SELECT set_config('admin.actor', $1, true)", current_staff(request).username
    )
