"""The live feed's exactly-once promise across instances: a client whose reconnects land on
either instance (nginx round robin) while both instances restart in turn and the replica
lags gets every event once, in id order."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import asyncpg
import httpx
import pytest

from tests.sse_client import messages
from tests.topology.conftest import URL, Admin, DelayedReplica, env, instance_ports

pytestmark = pytest.mark.skipif(not URL, reason="needs the topology of deploy/ci/topology.sh")

EVENTS_PER_SECOND = 100
# written in all, at least: a loaded machine writes fewer per second, so it writes for longer
MIN_EVENTS = 600
RECONNECT_EVERY_S = 1.5
# how long the reader may take to receive the last event once writing stops
CATCH_UP_S = 60.0


async def write_orders(conn: asyncpg.Connection, customer: int, stop: asyncio.Event) -> None:
    written = 0
    while not stop.is_set() or written < MIN_EVENTS:
        await conn.execute(
            "INSERT INTO orders (user_id, total) SELECT $1, g FROM generate_series(1, 5) AS g",
            customer,
        )
        written += 5
        await asyncio.sleep(5 / EVENTS_PER_SECOND)


async def read_feed(
    http: httpx.AsyncClient, after: int, received: list[int], done: asyncio.Event
) -> None:
    """Resume from the last id seen, reconnecting every few seconds (and whenever a stream
    ends, as a restarting instance ends its streams) so requests alternate instances."""
    last = after
    while not done.is_set():
        try:
            async with http.stream("GET", "/events", params={"after": str(last)}) as response:
                if response.status_code != 200:
                    await asyncio.sleep(0.2)
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECONNECT_EVERY_S):
                        async for message in messages(response):
                            if message.event == "order" and message.id is not None:
                                received.append(int(message.id))
                                last = int(message.id)
                            elif message.event == "reload":
                                raise AssertionError("told to reload: the replay fell short")
        except (httpx.TransportError, httpx.StreamError):
            await asyncio.sleep(0.1)


async def test_every_event_once_in_order_across_a_rolling_restart(
    admin: Admin, primary: asyncpg.Connection, delayed_replica: DelayedReplica
):
    name = f"feed_{uuid.uuid4().hex[:8]}"
    customer = await primary.fetchval(
        "INSERT INTO users (username, email) VALUES ($1, $1 || '@example.com') RETURNING id", name
    )
    start = await primary.fetchval("SELECT coalesce(max(id), 0) FROM order_events")
    writer_conn = await asyncpg.connect(env("TOPOLOGY_PRIMARY_URL"))
    stop_writing, stop_reading = asyncio.Event(), asyncio.Event()
    received: list[int] = []
    writer = asyncio.create_task(write_orders(writer_conn, customer, stop_writing))
    reader = asyncio.create_task(read_feed(admin.http, start, received, stop_reading))
    try:
        await asyncio.sleep(2)
        restart = env("TOPOLOGY_RESTART")
        for port in instance_ports():
            process = await asyncio.create_subprocess_shell(restart.replace("{port}", str(port)))
            assert await process.wait() == 0
        await asyncio.sleep(2)
        stop_writing.set()
        await writer
        expected = [
            row["id"]
            for row in await primary.fetch(
                "SELECT id FROM order_events WHERE id > $1 ORDER BY id", start
            )
        ]
        deadline = time.monotonic() + CATCH_UP_S
        while not (received and received[-1] >= expected[-1]) and not reader.done():
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    finally:
        stop_writing.set()
        stop_reading.set()
        # everything received is in `received`: a reader still opening a stream is cancelled
        # rather than waited for (a "reload" it was told earlier still fails the test here)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await writer_conn.close()
    assert len(expected) >= MIN_EVENTS
    assert len(received) == len(set(received)), "an event came twice"
    assert received == expected
