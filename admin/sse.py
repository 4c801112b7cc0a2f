"""GET /events: the live order feed as server-sent events, resumable by event id."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin import db, events, live, live_view, sse_slots
from admin.hub import Batch, Broadcast, Subscription
from admin.settings import Settings
from admin.sse_response import Emit, EventStreamResponse

log = logging.getLogger("admin.sse")

RETRY_MS = 2000
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
    running = live.live_for(request.app)
    # the caps come first: a refused client costs no subscription and no query
    release = running.slots.take(sse_slots.session_key(request))
    try:
        hub = running.hub
        if not await hub.wait_ready(READY_SECONDS):
            raise db.DatabaseUnavailable("live events are not available yet")
        subscription = hub.subscribe()
    except BaseException:
        release()
        raise

    def end() -> None:
        hub.unsubscribe(subscription)
        release()

    feed = _Feed(request, subscription, after, status)
    return EventStreamResponse(subscription, feed.prelude, feed.render, end)


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


def _opening(position: int) -> bytes:
    # The id tells a client that has seen no event yet where it stands, so that a
    # reconnect before the first event resumes from here instead of from "now".
    return f": live\r\nid: {position}\r\nretry: {RETRY_MS}\r\n\r\n".encode()


class _Feed:
    """One client's position in the sequence: replayed first, then rendered live."""

    def __init__(
        self, request: Request, subscription: Subscription, after: int | None, status: str | None
    ) -> None:
        self._request = request
        self._subscription = subscription
        self._after = after
        self._status = status
        self._last = subscription.start

    async def prelude(self, emit: Emit) -> bool:
        # The subscription holds every release after `start`; ids up to `start` are final
        # in the table. Replay those, then go live, skipping anything already sent (a
        # client coming from another process may be ahead of this one).
        after, start = self._after, self._subscription.start
        await emit(_opening(start if after is None else after))
        if after is None:
            return True
        try:
            async for chunk in _replay(self._request, after, start, self._status):
                await emit(chunk)
        except db.DatabaseUnavailable as exc:
            log.warning("replay failed, the client will retry: %s", exc)
            return False
        self._last = max(after, start)
        return True

    def render(self, message: Batch | Broadcast) -> bytes:
        if isinstance(message, Broadcast):
            return message.frame
        chunk, self._last = _batch_frames(message, self._last, self._status)
        return chunk


def _batch_frames(batch: Batch, last: int, status: str | None) -> tuple[bytes, int]:
    if batch.last_id <= last:
        return batch.extra, last
    if batch.events[0].id > last:
        frames = batch.frames.get(status)
        if frames is None:
            frames = live_view.order_frames(batch.events, status) + batch.extra
            batch.frames[status] = frames
        return frames, batch.last_id
    fresh = [e for e in batch.events if e.id > last]
    return live_view.order_frames(fresh, status) + batch.extra, batch.last_id
