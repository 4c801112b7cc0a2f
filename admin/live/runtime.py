"""The live-events machinery of one app: its hub and counters feed, started and stopped once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import asyncpg
from starlette.applications import Starlette

from admin import db
from admin.live import changes
from admin.live.hub import Hub
from admin.live.sse_response import server_exiting
from admin.live.sse_slots import StreamSlots
from admin.live.stats import StatsFeed
from admin.live.stream_guard import StreamGuard
from admin.settings import Settings

log = logging.getLogger("admin.live")

# how often the process checks whether the server was told to exit
EXIT_POLL_SECONDS = 0.1
# resource_changes sends no notifications (they would serialise writers' commits): its hub
# polls the id sequence this often, one cheap query, which bounds the added latency
CHANGES_POLL_SECONDS = 0.03
CHANGES_APPLICATION_NAME = "pg-admin-panel-changes"
# resource_changes is kept for twice the replay window (a client further back reloads
# anyway); each process looks this often, the first to get the lock purges
PURGE_EVERY_SECONDS = 600.0
# replay batches read and rendered at once, whatever the number of replaying clients: they
# take turns, so a crowd of deep replays slows itself, not the pages of everyone else
REPLAY_BATCHES_AT_ONCE = 1


@dataclass
class Live:
    hub: Hub
    # changes to every resource table (resource_changes), for /live/changes
    changes: Hub
    stats: StatsFeed
    slots: StreamSlots
    # closes open streams whose login changed (role, logout, deactivation)
    guard: StreamGuard
    exit_watch: asyncio.Task[None]
    purger: asyncio.Task[None]
    replay_turns: asyncio.Semaphore


def start(app: Starlette) -> Live:
    """Start the hub (one LISTEN connection for this process) and the counters feed."""
    settings: Settings = app.state.settings
    dsn = settings.listen_database_url or settings.database_url
    assert dsn is not None
    hub = Hub(dsn)
    changes_hub = Hub(
        dsn,
        source=changes.SOURCE,
        application_name=CHANGES_APPLICATION_NAME,
        health_interval=CHANGES_POLL_SECONDS,
    )
    stats = StatsFeed(hub, app.state.pool, day_zone=settings.shop_time_zone)
    hub.start()
    changes_hub.start()
    stats.start()
    exit_watch = asyncio.create_task(
        _end_streams_on_exit(hub, changes_hub), name="order-events-exit"
    )
    slots = StreamSlots(settings.sse_max_per_session, settings.sse_max_per_process)
    guard = StreamGuard(lambda: db.acquire(app.state.pool, settings.pool_acquire_timeout))
    guard.start()
    app.state.live = Live(
        hub=hub,
        changes=changes_hub,
        stats=stats,
        slots=slots,
        guard=guard,
        purger=asyncio.create_task(_purge_changes(app, settings), name="changes-purge"),
        exit_watch=exit_watch,
        replay_turns=asyncio.Semaphore(REPLAY_BATCHES_AT_ONCE),
    )
    return app.state.live


async def stop(app: Starlette) -> None:
    live: Live | None = getattr(app.state, "live", None)
    if live is None:
        return
    app.state.live = None
    for task in (live.exit_watch, live.purger):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await live.guard.stop()
    await live.stats.stop()
    await live.hub.stop()
    await live.changes.stop()


async def _purge_changes(app: Starlette, settings: Settings) -> None:
    keep_hours = 2 * settings.sse_replay_max_hours
    while True:
        await asyncio.sleep(PURGE_EVERY_SECONDS)
        try:
            async with db.acquire(app.state.pool, settings.pool_acquire_timeout) as conn:
                purged = await changes.purge(conn, keep_hours)
            if purged:
                log.info("purged %d changes older than %.0f h", purged, keep_hours)
        except (db.DatabaseUnavailable, asyncpg.PostgresError, OSError) as exc:
            log.warning("changes not purged this time: %s", exc)


async def _end_streams_on_exit(*hubs: Hub) -> None:
    """The server waits for open responses before its shutdown runs `stop()`, and
    streams never finish by themselves: end them as soon as it is told to exit."""
    # nothing to wait on: uvicorn only sets a flag
    while not server_exiting():  # noqa: ASYNC110
        await asyncio.sleep(EXIT_POLL_SECONDS)
    for hub in hubs:
        hub.close_all("shutdown")


def running_hub(app: Starlette) -> Hub | None:
    live: Live | None = getattr(app.state, "live", None)
    return live.hub if live is not None else None


def live_for(app: Starlette) -> Live:
    """The app's live machinery; an app built around an injected pool (no lifespan)
    starts it here."""
    running: Live | None = getattr(app.state, "live", None)
    return running or start(app)
