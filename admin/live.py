"""The live-events machinery of one app: its hub and counters feed, started and stopped once."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from starlette.applications import Starlette

from admin.hub import Hub
from admin.live_stats import StatsFeed
from admin.settings import Settings
from admin.sse_response import server_exiting
from admin.sse_slots import StreamSlots

# how often the process checks whether the server was told to exit
EXIT_POLL_SECONDS = 0.1
# replay batches read and rendered at once, whatever the number of replaying clients: they
# take turns, so a crowd of deep replays slows itself, not the pages of everyone else
REPLAY_BATCHES_AT_ONCE = 1


@dataclass
class Live:
    hub: Hub
    stats: StatsFeed
    slots: StreamSlots
    exit_watch: asyncio.Task[None]
    replay_turns: asyncio.Semaphore


def start(app: Starlette) -> Live:
    """Start the hub (one LISTEN connection for this process) and the counters feed."""
    settings: Settings = app.state.settings
    dsn = settings.listen_database_url or settings.database_url
    assert dsn is not None
    hub = Hub(dsn)
    stats = StatsFeed(hub, app.state.pool)
    hub.start()
    stats.start()
    exit_watch = asyncio.create_task(_end_streams_on_exit(hub), name="order-events-exit")
    slots = StreamSlots(settings.sse_max_per_session, settings.sse_max_per_process)
    app.state.live = Live(
        hub=hub,
        stats=stats,
        slots=slots,
        exit_watch=exit_watch,
        replay_turns=asyncio.Semaphore(REPLAY_BATCHES_AT_ONCE),
    )
    return app.state.live


async def stop(app: Starlette) -> None:
    live: Live | None = getattr(app.state, "live", None)
    if live is None:
        return
    app.state.live = None
    live.exit_watch.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await live.exit_watch
    await live.stats.stop()
    await live.hub.stop()


async def _end_streams_on_exit(hub: Hub) -> None:
    """The server waits for open responses before its shutdown runs `stop()`, and
    streams never finish by themselves: end them as soon as it is told to exit."""
    # nothing to wait on: uvicorn only sets a flag
    while not server_exiting():  # noqa: ASYNC110
        await asyncio.sleep(EXIT_POLL_SECONDS)
    hub.close_all("shutdown")


def running_hub(app: Starlette) -> Hub | None:
    live: Live | None = getattr(app.state, "live", None)
    return live.hub if live is not None else None


def live_for(app: Starlette) -> Live:
    """The app's live machinery; an app built around an injected pool (no lifespan)
    starts it here."""
    running: Live | None = getattr(app.state, "live", None)
    return running or start(app)
