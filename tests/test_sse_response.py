"""The lean SSE response: a send stuck on a client that stopped reading ends when the
hub drops that client, and a disconnect ends the stream."""

from __future__ import annotations

import asyncio

from starlette.types import Message

from admin.live.hub import Broadcast, Hub
from admin.live.sse_response import EventStreamResponse

SCOPE = {"type": "http", "method": "GET"}


async def _never_disconnects() -> Message:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def _nothing_before_the_queue(emit) -> bool:  # type: ignore[no-untyped-def]
    return True


def _as_is(message) -> bytes:  # type: ignore[no-untyped-def]
    return message.frame


async def test_send_stuck_on_a_full_socket_ends_when_the_queue_overflows(database_url: str):
    hub = Hub(database_url, queue_size=2)
    hub.start()
    try:
        assert await hub.wait_ready(10)
        subscription = hub.subscribe()
        sent: list[Message] = []
        full_socket = asyncio.Event()

        async def send(message: Message) -> None:
            sent.append(message)
            if message["type"] == "http.response.body":
                # the socket buffer is full and the client reads nothing more
                full_socket.set()
                await asyncio.Event().wait()

        ended: list[bool] = []
        response = EventStreamResponse(
            subscription, _nothing_before_the_queue, _as_is, lambda: ended.append(True)
        )
        stream = asyncio.create_task(response(SCOPE, _never_disconnects, send))
        hub.broadcast(Broadcast(b"data: 1\n\n"))
        async with asyncio.timeout(10):
            await full_socket.wait()
            for n in range(2, 5):
                hub.broadcast(Broadcast(f"data: {n}\n\n".encode()))
            await stream
        assert subscription.closed == "too slow"
        assert ended == [True] and hub.client_count == 0
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    finally:
        await hub.stop()


async def test_disconnect_ends_the_stream_and_unsubscribes(database_url: str):
    hub = Hub(database_url)
    hub.start()
    try:
        assert await hub.wait_ready(10)
        subscription = hub.subscribe()
        sent: list[Message] = []
        disconnect = asyncio.Event()
        first_chunk = asyncio.Event()

        async def receive() -> Message:
            await disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)
            if message.get("body"):
                first_chunk.set()

        response = EventStreamResponse(
            subscription,
            _nothing_before_the_queue,
            _as_is,
            lambda: hub.unsubscribe(subscription),
        )
        stream = asyncio.create_task(response(SCOPE, receive, send))
        hub.broadcast(Broadcast(b"data: 1\n\n"))
        async with asyncio.timeout(10):
            await first_chunk.wait()
            disconnect.set()
            await stream
        assert subscription.closed == "disconnected" and hub.client_count == 0
        assert [m.get("body") for m in sent[1:]] == [b"data: 1\n\n", b""]
    finally:
        await hub.stop()
