"""POST /<table>/<key>/presence: "alice is editing this record".

An open edit form says so every `PING_SECONDS` (static/live.js) and learns who else has
the same record's form open; leaving says so too (`?gone=1`). Kept in the database, so
editors on different workers or instances see each other. A form that stopped pinging
(closed tab, lost network) drops out after `STALE_SECONDS`.
"""

from __future__ import annotations

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from admin import db
from admin.access import current_staff
from admin.resources.model import Table
from admin.resources.record_views import record_key

PING_SECONDS = 15
STALE_SECONDS = 45

_PING = """
WITH pruned AS (
    DELETE FROM live_presence
    WHERE schema_name = $1 AND table_name = $2 AND key = $3
      AND seen_at < now() - make_interval(secs => $6)
), seen AS (
    INSERT INTO live_presence (schema_name, table_name, key, staff_id, username)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (schema_name, table_name, key, staff_id) DO UPDATE SET seen_at = now()
)
SELECT username FROM live_presence
WHERE schema_name = $1 AND table_name = $2 AND key = $3 AND staff_id <> $4
  AND seen_at >= now() - make_interval(secs => $6)
ORDER BY username
"""
_GONE = """
DELETE FROM live_presence
WHERE schema_name = $1 AND table_name = $2 AND key = $3 AND staff_id = $4
"""


async def ping(
    conn: asyncpg.Connection, table: Table, key: str, staff_id: int, username: str
) -> list[str]:
    """Record this editor and return the others editing the same record now."""
    rows = await conn.fetch(
        _PING, table.info.schema, table.info.name, key, staff_id, username, STALE_SECONDS
    )
    return [row["username"] for row in rows]


async def presence(request: Request, table: Table) -> Response:
    # canonical, so that every way of writing the key names the same record
    key = table.encode_key(record_key(request, table))
    member = current_staff(request)
    async with db.connection(request) as conn:
        if request.query_params.get("gone"):
            await conn.execute(_GONE, table.info.schema, table.info.name, key, member.id)
            return JSONResponse({"editing": []})
        others = await ping(conn, table, key, member.id, member.username)
    return JSONResponse({"editing": others, "every": PING_SECONDS})
