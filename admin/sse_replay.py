"""What a resuming client missed, read from the table in small batches.

A replay competes with every other request of the process for the event loop and the
pool, so it is cooperative: one short query per batch on a connection taken for that
batch alone, a yield to the loop after each batch, and a stop as soon as its client is
gone. A resume point too far back gets no replay at all (`too_far_behind`): the client
is told to reload instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import asyncpg
from starlette.requests import Request

from admin import db, events, live_view
from admin.settings import Settings

# events per batch: small enough that rendering one batch never holds the loop long
BATCH = 200


def connection(request: Request) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
    """A pooled connection for one short step (a failed one becomes a 503 and is discarded)."""
    settings: Settings = request.app.state.settings
    return db.acquire(request.app.state.pool, settings.pool_acquire_timeout)


async def too_far_behind(request: Request, after: int, upto: int) -> bool:
    if upto <= after:
        return False  # nothing to replay: no query (the common quick reconnect)
    settings: Settings = request.app.state.settings
    async with connection(request) as conn:
        return await events.too_far_behind(
            conn,
            after,
            upto,
            max_events=settings.sse_replay_max_events,
            max_hours=settings.sse_replay_max_hours,
        )


async def frames(
    request: Request,
    after: int,
    upto: int,
    status: str | None,
    stopped: Callable[[], bool],
) -> AsyncIterator[bytes]:
    """Encoded events with after < id <= upto, batch by batch, until `stopped()`."""
    last = after
    while last < upto and not stopped():
        async with connection(request) as conn:
            batch = await events.between(conn, last, upto, status=status, limit=BATCH)
        if batch:
            yield live_view.order_frames(batch, None)
        if len(batch) < BATCH:
            return
        last = batch[-1].id
        # let other requests (and the disconnect watcher) run between batches
        await asyncio.sleep(0)
