"""Exception handlers: errors look like the app, and database trouble answers 503."""

from __future__ import annotations

import logging

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from admin.db import DatabaseUnavailable, is_connection_failure, unavailable
from admin.web.headers import SECURITY_HEADERS
from admin.web.templating import templates

log = logging.getLogger("admin.web.errors")

# seconds: a lock wait or a slow statement is someone else's work, usually soon done
BUSY_RETRY_AFTER = 2

TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Too slow",
    409: "Conflict",
    413: "Too large",
    422: "Invalid input",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}


def error_page(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    if "text/html" not in request.headers.get("accept", "text/html") and not request.headers.get(
        "hx-request"
    ):
        return PlainTextResponse(f"{status} {message}\n", status_code=status, headers=headers)
    navigating = request.headers.get("hx-boosted") and request.method == "GET"
    if request.headers.get("hx-request") and not navigating:
        # a fragment or a form sent by htmx (a search, an inline save): the message goes to
        # the page's flash area, what the reader has open or typed stays, the address too
        return templates.TemplateResponse(
            request,
            "_error_message.html",
            {"message": message},
            status_code=status,
            headers={
                **(headers or {}),
                "HX-Retarget": "#flashes",
                "HX-Reswap": "innerHTML",
                "HX-Push-Url": "false",
            },
        )
    if not hasattr(request.state, "session"):
        request.state.session = None
        request.state.staff = None
    return templates.TemplateResponse(
        request,
        "errors/error.html",
        {"status": status, "title": TITLES.get(status, "Error"), "message": message},
        status_code=status,
        headers=headers,
    )


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    default = TITLES.get(exc.status_code, "Error")
    message = exc.detail if exc.detail and exc.detail != default else default
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = "There is nothing at this address."
    return error_page(request, exc.status_code, str(message), dict(exc.headers or {}))


async def database_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DatabaseUnavailable)
    log.warning("503: %s", exc)
    return error_page(
        request,
        503,
        f"The database is not answering right now ({exc}). Retry in a few seconds.",
        {"Retry-After": str(exc.retry_after)},
    )


async def catalog_locked(request: Request, exc: Exception) -> Response:
    """No catalog was read yet, and tables kept being locked while it was (DDL running)."""
    log.warning("503: %s", exc)
    return error_page(
        request,
        503,
        "Tables are being changed in the database right now. Retry in a few seconds.",
        {"Retry-After": str(getattr(exc, "retry_after", 2))},
    )


async def database_busy(request: Request, exc: Exception) -> Response:
    """A statement gave up waiting: for a lock someone else holds (LOCK_TIMEOUT_MS) or for
    its own end (STATEMENT_TIMEOUT_MS). Its transaction rolled back; the pool is free."""
    log.warning("503: %s: %s", type(exc).__name__, exc)
    if isinstance(exc, asyncpg.LockNotAvailableError):
        message = (
            "This data is locked by another change in the database (a table being altered, "
            "or a long transaction). Nothing was changed. Retry in a few seconds."
        )
    else:
        message = "The database took too long to answer. Nothing was changed. Retry later."
    return error_page(request, 503, message, {"Retry-After": str(BUSY_RETRY_AFTER)})


async def connection_failure(request: Request, exc: Exception) -> Response:
    """A driver or socket error that no code path turned into DatabaseUnavailable: 503 too."""
    if not is_connection_failure(exc):
        raise exc
    return await database_unavailable(request, unavailable(exc))


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    # Starlette sends this from ServerErrorMiddleware, outside every other middleware,
    # so the security headers are added here rather than by SecurityHeadersMiddleware.
    return error_page(
        request, 500, "An unexpected error happened; it has been logged.", dict(SECURITY_HEADERS)
    )
