"""GET /healthz: is the app up, and can it reach its database?"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from admin import db

HEALTH_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> Response:
    try:
        await db.ping(request.app.state.pool, HEALTH_TIMEOUT_SECONDS)
    except db.DatabaseUnavailable as exc:
        return JSONResponse(
            {"status": "error", "database": "unavailable", "reason": str(exc)},
            status_code=503,
            headers={"Retry-After": "5", "Cache-Control": "no-store"},
        )
    return JSONResponse({"status": "ok", "database": "ok"}, headers={"Cache-Control": "no-store"})
