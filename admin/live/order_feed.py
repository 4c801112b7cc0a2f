"""GET /events: the live order feed as server-sent events, resumable by event id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin.live import events, sse_feed, sse_replay
from admin.live import runtime as live
from admin.live import view as live_view
from admin.live.events import OrderEvent
from admin.live.hub import Subscription

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
    hub = live.live_for(request.app).hub

    def feed(subscription: Subscription, resume: int | None, reload: bool) -> sse_feed.Feed:
        return _OrderFeed(request, subscription, resume, reload, status)

    return await sse_feed.open_stream(request, hub, after, events.too_far_behind, feed)


class _OrderFeed(sse_feed.Feed):
    """The order feed, all events or one status's."""

    __slots__ = ("_status",)

    def __init__(
        self,
        request: Request,
        subscription: Subscription,
        after: int | None,
        reload: bool,
        status: str | None,
    ) -> None:
        super().__init__(request, subscription, after, reload)
        self._status = status

    def replay(self, after: int, upto: int) -> AsyncIterator[bytes]:
        return sse_replay.order_frames(self._request, after, upto, self._status, self.gone)

    @property
    def frames_key(self) -> str | None:
        return self._status

    def encode(self, items: Sequence[OrderEvent]) -> bytes:
        return live_view.order_frames(items, self._status)
