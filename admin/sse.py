"""GET /events: the live order feed as server-sent events, resumable by event id."""

from __future__ import annotations

import contextlib
import logging

from sse_starlette import ServerSentEvent
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin import db, events, live, live_view, sse_replay, sse_slots, stream_guard
from admin.hub import Batch, Broadcast, Subscription
from admin.sse_response import Emit, EventStreamResponse

log = logging.getLogger("admin.sse")

RETRY_MS = 2000
READY_SECONDS = 5.0
MAX_ID = 2**63 - 1


def _event_id(raw: str | None, name: str) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip()
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_ID:
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
    hub, slots = running.hub, running.slots
    key = sse_slots.session_key(request)
    # the caps come first: a refused client costs no subscription and no query
    slots.take(key)
    try:
        if not await hub.wait_ready(READY_SECONDS):
            raise db.DatabaseUnavailable("live events are not available yet")
        subscription = hub.subscribe()
        try:
            reload = after is not None and await sse_replay.too_far_behind(
                request, after, subscription.start
            )
        except BaseException:
            hub.unsubscribe(subscription)
            raise
    except BaseException:
        slots.release(key)
        raise

    login = stream_guard.login_of(request)
    running.guard.watch(login, subscription)

    def end() -> None:
        running.guard.forget(login, subscription)
        hub.unsubscribe(subscription)
        slots.release(key)

    feed = _Feed(request, subscription, None if reload else after, status, reload=reload)
    return EventStreamResponse(subscription, feed.prelude, feed.render, end)


def _opening(position: int) -> bytes:
    # The id tells a client that has seen no event yet where it stands, so that a
    # reconnect before the first event resumes from here instead of from "now".
    return f": live\r\nid: {position}\r\nretry: {RETRY_MS}\r\n\r\n".encode()


def _reload(position: int) -> bytes:
    return ServerSentEvent(event="reload", id=str(position), data="reload").encode()


class _Feed:
    """One client's position in the sequence: replayed first, then rendered live."""

    # one per connected client, however idle: no instance dict
    __slots__ = ("_after", "_last", "_reload", "_request", "_status", "_subscription")

    def __init__(
        self,
        request: Request,
        subscription: Subscription,
        after: int | None,
        status: str | None,
        *,
        reload: bool = False,
    ) -> None:
        self._request = request
        self._subscription = subscription
        self._after = after
        self._status = status
        self._reload = reload
        self._last = subscription.start

    async def prelude(self, emit: Emit) -> bool:
        # The subscription holds every release after `start`; ids up to `start` are final
        # in the table. Replay those, then go live, skipping anything already sent (a
        # client coming from another process may be ahead of this one).
        after, start = self._after, self._subscription.start
        if after is None:
            await emit(_opening(start))
            if self._reload:
                # too far behind to replay: the client starts over from the page
                await emit(_reload(start))
            return True
        await emit(_opening(after))
        replay = sse_replay.frames(self._request, after, start, self._status, self._gone)
        try:
            async with contextlib.aclosing(replay):
                async for chunk in replay:
                    await emit(chunk)
        except db.DatabaseUnavailable as exc:
            log.warning("replay failed, the client will retry: %s", exc)
            return False
        if self._gone():
            return False
        self._last = max(after, start)
        return True

    def _gone(self) -> bool:
        """The client left or the server is shutting down: stop replaying."""
        return self._subscription.closed is not None

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
