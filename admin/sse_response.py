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

from admin.hub import CLOSED_WHILE_SENDING, Batch, Broadcast, Closed, Subscription

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]

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
    ) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = list(HEADERS)
        self._subscription = subscription
        self._prelude = prelude
        self._render = render
        self._on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if scope.get("method") == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if await self._stream(receive, send):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self._on_end()

    async def _stream(self, receive: Receive, send: Send) -> bool:
        """False when a send was interrupted: the response cannot be completed, and
        returning without completing it makes the server close the connection."""
        subscription = self._subscription
        task = asyncio.current_task()
        assert task is not None
        subscription.writer = task
        watcher = asyncio.create_task(_close_on_disconnect(receive, subscription))

        async def emit(chunk: bytes) -> None:
            subscription.sending = True
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            subscription.sending = False
            subscription.sends += 1

        try:
            if not await self._prelude(emit):
                return True
            await self._live(send)
        except asyncio.CancelledError as exc:
            if not (exc.args == (CLOSED_WHILE_SENDING,) and task.uncancel() == 0):
                raise
            return False
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
