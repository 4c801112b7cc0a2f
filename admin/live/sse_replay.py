"""What a resuming client missed, read from the table in small batches.

A replay competes with every other request of the process for the event loop and the
pool, so it is cooperative: one short query per batch on a connection taken for that
batch alone; replays take turns, one batch at a time in the whole process, and each turn
is followed by a pause as long as the turn took, so replays never take more than half of
the process however many clients replay; and a replay stops as soon as its client is
gone. A resume point too far back gets no replay at all (`too_far_behind`): the client
is told to reload instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from starlette.requests import Request

from admin import db
from admin.live import events
from admin.live import runtime as live
from admin.live import view as live_view
from admin.settings import Settings

# events per batch: small enough that rendering one batch never holds the loop long
BATCH = 100


def connection(request: Request) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
    """A pooled connection for one short step (a failed one becomes a 503 and is discarded).
    Before the stream starts this is the request's own connection: a second one per
    request would let a crowd of reconnecting browsers exhaust the pool on themselves."""
    return db.connection(request)


async def too_far_behind(
    request: Request, after: int, upto: int, check: Callable[..., Awaitable[bool]]
) -> bool:
    """Whether `check` (events.too_far_behind, changes.too_far_behind) finds the resume
    point too old to replay, under the configured caps."""
    if upto <= after:
        return False  # nothing to replay: no query (the common quick reconnect)
    settings: Settings = request.app.state.settings
    async with connection(request) as conn:
        return await check(
            conn,
            after,
            upto,
            max_events=settings.sse_replay_max_events,
            max_hours=settings.sse_replay_max_hours,
        )


# reads (after, ...] on a connection: the encoded frames, the last id read, and whether
# more may follow
ReadBatch = Callable[[asyncpg.Connection, int], Awaitable[tuple[bytes, int, bool]]]


async def in_turns(
    request: Request, after: int, upto: int, read: ReadBatch, stopped: Callable[[], bool]
) -> AsyncIterator[bytes]:
    """Frames for (after, upto], batch by batch as `read` gives them, until `stopped()`."""
    last = after
    turns = live.live_for(request.app).replay_turns
    while last < upto and not stopped():
        async with turns:
            if stopped():
                return
            began = time.perf_counter()
            async with connection(request) as conn:
                encoded, last, more = await read(conn, last)
            # replays get at most half of the process: leave the loop to every other
            # request for as long as this batch took
            await asyncio.sleep(time.perf_counter() - began)
        if encoded:
            yield encoded
        if not more:
            return


def order_frames(
    request: Request, after: int, upto: int, status: str | None, stopped: Callable[[], bool]
) -> AsyncIterator[bytes]:
    """The order feed's events with after < id <= upto, encoded."""

    async def read(conn: asyncpg.Connection, last: int) -> tuple[bytes, int, bool]:
        batch = await events.between(conn, last, upto, status=status, limit=BATCH)
        encoded = live_view.order_frames(batch, None)
        return encoded, (batch[-1].id if batch else upto), len(batch) == BATCH

    return in_turns(request, after, upto, read, stopped)
