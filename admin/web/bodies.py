"""Reading request bodies within limits: size, time, and a minimum rate.

A body is read chunk by chunk and refused the moment it goes past its size, its time, or
falls below the minimum rate, so a large or slow body never sits in memory or holds
anything (a pooled connection, a transaction) while it trickles in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

from admin.settings import Settings

# The first seconds of a body are exempt from the minimum rate (TCP slow start, a phone
# waking its radio); after that the body must keep up with `min_bytes_per_s` on average.
RATE_GRACE_S = 5.0


class BodyRefused(Exception):
    """The body broke a limit; `status` is the HTTP answer and nothing was written."""

    status = 400
    # A slow client is dropped; any other client still reads the answer, while the server
    # discards the rest of its body without keeping it (closing now would reset the
    # connection under a client still sending, and it would never see the status).
    close_connection = False


class BodyTooLarge(BodyRefused):
    status = 413


class BodyTooSlow(BodyRefused):
    status = 408
    close_connection = True


class BodyCutShort(BodyRefused):
    """The client went away before sending the whole body."""

    status = 400


@dataclass(frozen=True)
class BodyLimits:
    """How much a body may hold and how long it may take.

    `total_s` bounds the whole body; `idle_s` bounds the wait for any one chunk;
    `min_bytes_per_s` (0: no minimum) is the average rate a body must keep after the grace.
    """

    max_bytes: int
    total_s: float
    idle_s: float
    min_bytes_per_s: int = 0

    def too_large_message(self) -> str:
        return f"The request body is larger than {describe_size(self.max_bytes)}."


def form_limits(settings: Settings, *, logged_in: bool) -> BodyLimits:
    """Limits for a form body: staff get MAX_FORM_KB, anyone not logged in the smaller one."""
    return BodyLimits(
        max_bytes=settings.max_form_bytes if logged_in else settings.max_anonymous_form_bytes,
        total_s=settings.body_timeout_s,
        idle_s=settings.body_timeout_s,
        min_bytes_per_s=settings.body_min_bytes_per_s,
    )


def http_error(refused: BodyRefused) -> HTTPException:
    """The HTTP answer for a refused body (rendered like every other error)."""
    headers = {"Connection": "close"} if refused.close_connection else None
    return HTTPException(refused.status, str(refused), headers=headers)


def describe_size(size: int) -> str:
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KB"
    return f"{size} bytes"


def check_declared_length(request: Request, limits: BodyLimits) -> None:
    """Refuse before reading anything when Content-Length already says the body is too big."""
    declared = request.headers.get("content-length", "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > limits.max_bytes:
        raise BodyTooLarge(limits.too_large_message())


async def limited_stream(request: Request, limits: BodyLimits) -> AsyncIterator[bytes]:
    """The request body's chunks, raising BodyRefused as soon as a limit is broken."""
    check_declared_length(request, limits)
    chunks = request.stream()
    started = time.monotonic()
    received = 0
    try:
        while True:
            now = time.monotonic()
            wait = min(limits.idle_s, started + limits.total_s - now)
            if limits.min_bytes_per_s:
                rate_deadline = started + RATE_GRACE_S + received / limits.min_bytes_per_s
                wait = min(wait, rate_deadline - now)
            if wait <= 0:
                raise BodyTooSlow(_slow_message(limits))
            try:
                async with asyncio.timeout(wait):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise BodyTooSlow(_slow_message(limits)) from None
            except ClientDisconnect:
                raise BodyCutShort("The request body was cut short; nothing was saved.") from None
            received += len(chunk)
            if received > limits.max_bytes:
                raise BodyTooLarge(limits.too_large_message())
            if chunk:
                yield chunk
    finally:
        await chunks.aclose()


async def read_body(request: Request, limits: BodyLimits) -> bytes:
    """The whole body within `limits`; cached where Starlette's request.body()/form() look."""
    parts = [chunk async for chunk in limited_stream(request, limits)]
    body = b"".join(parts)
    request._body = body  # Starlette's own cache, read by body() and form()
    return body


def _slow_message(limits: BodyLimits) -> str:
    return (
        "The request body arrived too slowly and was dropped; nothing was saved. "
        f"(Bodies must arrive within {limits.total_s:g} s"
        + (f" at {limits.min_bytes_per_s} bytes/s or faster" if limits.min_bytes_per_s else "")
        + ".)"
    )
