"""GET /events: the live order feed as server-sent events, resumable by event id."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin import db, events, live, live_view
from admin.hub import Batch, Broadcast, Closed, Hub, Subscription
from admin.settings import Settings

log = logging.getLogger("admin.sse")

RETRY_MS = 2000
HEARTBEAT_SECONDS = 15
# a client that has not taken a chunk for this long is cut off; it resumes by id later
SEND_TIMEOUT_SECONDS = 30
READY_SECONDS = 5.0
REPLAY_PAGE = 500
MAX_ID = 2**63 - 1


def _event_id(raw: str | None, name: str) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip()
    if not value.isdigit() or int(value) > MAX_ID:
        raise HTTPException(400, f"{name} must be a non-negative event id, got {value[:40]!r}")
    return int(value)


def resume_point(request: Request) -> int | None:
    """The last id the client has: the larger of Last-Event-ID and ?after= (a browser
    reconnecting natively sends the header with the page's original URL)."""
    header = _event_id(request.headers.get("last-event-id"), "Last-Event-ID")
    query = _event_id(request.query_params.get("after"), "after")
    known = [v for v in (header, query) if v is not None]
    return max(known) if known else None


def status_filter(request: Request) -> str | None:
    status = request.query_params.get("status", "").strip()
    if not status:
        return None
    if status not in events.STATUSES:
        raise HTTPException(400, f"Unknown status {status[:40]!r}: use one of {events.STATUSES}.")
    return status


async def events_stream(request: Request) -> Response:
    after = resume_point(request)
    status = status_filter(request)
    hub = live.hub_for(request.app)
    if not await hub.wait_ready(READY_SECONDS):
        raise db.DatabaseUnavailable("live events are not available yet")
    subscription = hub.subscribe()
    return EventSourceResponse(
        _stream(request, hub, subscription, after, status),
        ping=HEARTBEAT_SECONDS,
        send_timeout=SEND_TIMEOUT_SECONDS,
        headers={"Cache-Control": "no-store"},
    )


async def _replay(
    request: Request, after: int, upto: int, status: str | None
) -> AsyncIterator[bytes]:
    """What the client missed, from the table, one pooled connection per page."""
    settings: Settings = request.app.state.settings
    last = after
    while last < upto:
        async with db.acquire(request.app.state.pool, settings.pool_acquire_timeout) as conn:
            page = await events.between(conn, last, upto, status=status, limit=REPLAY_PAGE)
        if page:
            yield live_view.order_frames(page, None)
        if len(page) < REPLAY_PAGE:
            return
        last = page[-1].id


async def _stream(
    request: Request,
    hub: Hub,
    subscription: Subscription,
    after: int | None,
    status: str | None,
) -> AsyncIterator[bytes]:
    try:
        yield ServerSentEvent(comment="live", retry=RETRY_MS).encode()
        # The subscription holds every release after `start`; ids up to `start` are final
        # in the table. Replay those, then go live, skipping anything already sent (a
        # client coming from another process may be ahead of this one).
        last = subscription.start
        if after is not None:
            try:
                async for chunk in _replay(request, after, subscription.start, status):
                    yield chunk
            except db.DatabaseUnavailable as exc:
                log.warning("replay failed, the client will retry: %s", exc)
                return
            last = max(after, subscription.start)
        while True:
            message = await subscription.queue.get()
            if isinstance(message, Closed):
                return
            if isinstance(message, Broadcast):
                yield message.frame
                continue
            chunk, last = _batch_frames(message, last, status)
            if chunk:
                yield chunk
    finally:
        hub.unsubscribe(subscription)


def _batch_frames(batch: Batch, last: int, status: str | None) -> tuple[bytes, int]:
    if batch.last_id <= last:
        return b"", last
    if batch.events[0].id > last:
        frames = batch.frames.get(status)
        if frames is None:
            frames = batch.frames[status] = live_view.order_frames(batch.events, status)
        return frames, batch.last_id
    fresh = [e for e in batch.events if e.id > last]
    return live_view.order_frames(fresh, status), batch.last_id
