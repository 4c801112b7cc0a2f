"""A lean server-sent events response: one ASGI send per chunk, nothing else per send.

A release goes to every connected client, so the per-client cost of one send is the
cost of the feed. This response writes each chunk with a bare `await send(...)`: no
generator step, no per-send timeout scope. What a per-send timeout was for is handled
by the hub instead: a client whose queue overflows, or whose send has been stuck for a
heartbeat interval, is closed, and closing interrupts the pending send (see
`Subscription.close`).

Ending: a client disconnect (watched on `receive` by one small task), the hub closing
the subscription (too slow, or shutdown), or the producer returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

from sse_starlette.sse import AppStatus
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from admin.live import sse_gzip
from admin.live.hub import CLOSED_WHILE_SENDING, Batch, Broadcast, Closed, Subscription

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]

FINAL: Message = {"type": "http.response.body", "body": b"", "more_body": False}
# how long the end of a stream may take to write before the connection is cut instead
FINISH_SECONDS = 2.0

Emit = Callable[[bytes], Awaitable[None]]
# writes what comes before the queue (`emit` sends one chunk); False ends the response
Prelude = Callable[[Emit], Awaitable[bool]]
# the bytes for one queued message, or b"" to skip it
Render = Callable[[Batch | Broadcast], bytes]


def server_exiting() -> bool:
    """True once uvicorn has been told to exit. sse-starlette patches uvicorn's
    `Server.handle_exit` to set `AppStatus.should_exit`; when uvicorn bound its signal
    handlers before that patch, the server is found through the handler instead."""
    if AppStatus.should_exit:
        return True
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    return bool(getattr(server, "should_exit", False))


class EventStreamResponse(Response):
    """Streams `prelude`, then every message of `subscription` as `render` encodes it,
    until the subscription is closed; calls `on_end` when the response is over."""

    media_type = "text/event-stream"

    def __init__(
        self,
        subscription: Subscription,
        prelude: Prelude,
        render: Render,
        on_end: Callable[[], None],
        *,
        gzip: bool = False,
    ) -> None:
        self.status_code = 200
        self.background = None
        # the body is compressed by `prelude` and `render` (admin/live/sse_feed.py)
        coding = sse_gzip.HEADERS if gzip else sse_gzip.PLAIN_HEADERS
        self.raw_headers = [*HEADERS, *coding]
        self._subscription = subscription
        self._prelude = prelude
        self._render = render
        self._on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if scope.get("method") == "HEAD":
                await send(FINAL)
                return
            if await self._stream(receive, send):
                await _finish(receive, send)
            elif abort_connection(receive):
                await _wait_for_disconnect(send)
        finally:
            self._on_end()

    async def _stream(self, receive: Receive, send: Send) -> bool:
        """False when a live send was interrupted: the client stopped reading, so the
        response cannot be completed (the next send would wait as long as the stuck one)."""
        subscription = self._subscription
        task = asyncio.current_task()
        assert task is not None
        subscription.writer = task
        watcher = asyncio.create_task(_close_on_disconnect(receive, subscription))

        async def emit(chunk: bytes) -> None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            subscription.sends += 1

        prelude_done = False
        try:
            # closing interrupts the prelude wherever it waits (a replay query or a send)
            subscription.sending = True
            go_on = await self._prelude(emit)
            subscription.sending = False
            prelude_done = True
            if go_on:
                await self._live(send)
        except asyncio.CancelledError as exc:
            if not (exc.args == (CLOSED_WHILE_SENDING,) and task.uncancel() == 0):
                raise
            # uvicorn waits for room before it writes, so an interrupted send wrote
            # nothing: a replay stopped anywhere can still end properly; a live send
            # stuck for that long means the client reads nothing more
            return not prelude_done
        finally:
            subscription.writer = None
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        return True

    async def _live(self, send: Send) -> None:
        # the hot path: runs once per client for every release
        subscription = self._subscription
        queue = subscription.queue
        render = self._render
        while True:
            message = await queue.get()
            if isinstance(message, Closed):
                return
            chunk = render(message)
            if chunk:
                subscription.sending = True
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                subscription.sending = False
                subscription.sends += 1


async def _close_on_disconnect(receive: Receive, subscription: Subscription) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            subscription.close("disconnected")
            return


async def _finish(receive: Receive, send: Send) -> None:
    """End the response properly; a client too slow to take even that is cut off."""
    try:
        async with asyncio.timeout(FINISH_SECONDS):
            await send(FINAL)
            return
    except TimeoutError:
        pass
    if abort_connection(receive):
        await _wait_for_disconnect(send)


def abort_connection(receive: Receive) -> bool:
    """Drop the client's connection now, discarding what is still buffered for it.

    ASGI has no message for this. Under uvicorn `receive` is a method of the request
    cycle, which holds the transport; aborting it makes the server see a disconnect,
    so a response dropped on purpose is not reported as an application error. Returns
    False under a server where that is not possible (it then closes the connection
    itself when the response returns unfinished).
    """
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    abort = getattr(transport, "abort", None)
    if abort is None:
        return False
    abort()
    return True


async def _wait_for_disconnect(send: Send) -> None:
    """After an abort, a send returns (writing nothing) once the server has noticed
    the disconnect; returning earlier would have it log an unfinished response."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(FINISH_SECONDS):
            await send(FINAL)
