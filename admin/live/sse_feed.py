"""What the two event streams (/events, /live/changes) share: opening a stream under the
caps, and one client's feed (replayed from the table first, then rendered live)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from typing import Any

from sse_starlette import ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response

from admin import db
from admin.live import runtime as live
from admin.live import sse_gzip, sse_replay, sse_slots, stream_guard
from admin.live.hub import Batch, Broadcast, Hub, Subscription
from admin.live.sse_response import Emit, EventStreamResponse

log = logging.getLogger("admin.sse")

RETRY_MS = 2000
READY_SECONDS = 5.0

TooFarBehind = Callable[..., Awaitable[bool]]
# where a batch caches its compressed bytes: beside the plain ones (keyed by `frames_key`,
# a string or None), under the same key with this in front
GZIP = "gzip"
GZIP_EXTRA = (GZIP, "extra")


def opening(position: int) -> bytes:
    # The id tells a client that has seen no event yet where it stands, so that a
    # reconnect before the first event resumes from here instead of from "now".
    return f": live\r\nid: {position}\r\nretry: {RETRY_MS}\r\n\r\n".encode()


def reload_frame(position: int) -> bytes:
    return ServerSentEvent(event="reload", id=str(position), data="reload").encode()


class Feed:
    """One client's position in a stream's sequence. The subscription holds every release
    after its `start`; ids up to `start` are final in the table. The prelude replays those
    (`replay`), then `render` goes live, skipping anything already sent (a client coming
    from another process may be ahead of this one)."""

    # one per connected client, however idle: no instance dict
    __slots__ = ("_after", "_gzip", "_last", "_reload", "_request", "_subscription")

    def __init__(
        self, request: Request, subscription: Subscription, after: int | None, reload: bool
    ) -> None:
        self._request = request
        self._subscription = subscription
        self._after = after
        self._reload = reload
        self._last = subscription.start
        self._gzip = sse_gzip.accepts_gzip(request.headers.get("accept-encoding", ""))

    @property
    def gzip(self) -> bool:
        """Whether this client takes the stream compressed (see admin/live/sse_gzip.py)."""
        return self._gzip

    def replay(self, after: int, upto: int) -> AsyncIterator[bytes]:
        """Encoded frames for what lies in (after, upto], read from the table."""
        raise NotImplementedError

    @property
    def frames_key(self) -> Any:
        """Which cached encoding of a batch this client shares with others."""
        raise NotImplementedError

    def encode(self, items: Sequence[Any]) -> bytes:
        raise NotImplementedError

    async def prelude(self, emit: Emit) -> bool:
        if not self._gzip:
            return await self._prelude(emit)
        send, header = emit, [sse_gzip.HEADER]

        # the prelude always sends the opening first, and the live sends only start
        # once it has been sent: the header goes in front of it
        async def compressed(chunk: bytes) -> None:
            await send((header.pop() if header else b"") + sse_gzip.segment(chunk))

        return await self._prelude(compressed)

    async def _prelude(self, emit: Emit) -> bool:
        after, start = self._after, self._subscription.start
        if after is None:
            await emit(opening(start))
            if self._reload:
                # too far behind to replay: the client starts over from the page
                await emit(reload_frame(start))
            return True
        await emit(opening(after))
        replay = self.replay(after, start)
        try:
            async with contextlib.aclosing(replay):
                async for chunk in replay:
                    await emit(chunk)
        except db.DatabaseUnavailable as exc:
            log.warning("replay failed, the client will retry: %s", exc)
            return False
        if self.gone():
            return False
        self._last = max(after, start)
        return True

    def gone(self) -> bool:
        """The client left or the server is shutting down: stop replaying."""
        return self._subscription.closed is not None

    def render(self, message: Batch | Broadcast) -> bytes:
        if self._gzip:
            return self._render_gzip(message)
        if isinstance(message, Broadcast):
            return message.frame
        last = self._last
        if message.last_id <= last:
            return message.extra
        self._last = message.last_id
        if message.events[0].id > last:
            return self._release(message)
        return self.encode([e for e in message.events if e.id > last]) + message.extra

    def _release(self, message: Batch) -> bytes:
        """The whole batch as this client's filter sees it: encoded once per filter."""
        key = self.frames_key
        chunk = message.frames.get(key)
        if chunk is None:
            chunk = message.frames[key] = self.encode(message.events) + message.extra
        return chunk

    def _render_gzip(self, message: Batch | Broadcast) -> bytes:
        """`render` compressed: whatever every client (or every client of one filter) gets
        is compressed once and cached beside the plain bytes; the rest for this client."""
        if isinstance(message, Broadcast):
            if message.compressed is None:
                message.compressed = sse_gzip.segment(message.frame)
            return message.compressed
        last = self._last
        if message.last_id <= last:
            return _compressed(message, GZIP_EXTRA, message.extra)
        self._last = message.last_id
        if message.events[0].id > last:
            return _compressed(message, (GZIP, self.frames_key), self._release(message))
        plain = self.encode([e for e in message.events if e.id > last]) + message.extra
        return sse_gzip.segment(plain) if plain else b""


def _compressed(message: Batch, key: Hashable, plain: bytes) -> bytes:
    """`plain` compressed, once per batch and key; nothing stays nothing (b"" is skipped)."""
    chunk = message.frames.get(key)
    if chunk is None:
        chunk = message.frames[key] = sse_gzip.segment(plain) if plain else b""
    return chunk


async def open_stream(
    request: Request,
    hub: Hub,
    after: int | None,
    too_far_behind: TooFarBehind,
    feed: Callable[[Subscription, int | None, bool], Feed],
) -> Response:
    """A stream of `hub`'s releases for one client, resumed after `after`. The caps come
    first: a refused client costs no subscription and no query."""
    running = live.live_for(request.app)
    slots = running.slots
    key = sse_slots.session_key(request)
    slots.take(key)
    try:
        if not await hub.wait_ready(READY_SECONDS):
            raise db.DatabaseUnavailable("live events are not available yet")
        subscription = hub.subscribe()
        try:
            reload = after is not None and await sse_replay.too_far_behind(
                request, after, subscription.start, too_far_behind
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

    client = feed(subscription, None if reload else after, reload)
    return EventStreamResponse(subscription, client.prelude, client.render, end, gzip=client.gzip)
