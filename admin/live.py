"""The live-events machinery of one app: its hub and counters feed, started and stopped once."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette

from admin.hub import Hub
from admin.live_stats import StatsFeed
from admin.settings import Settings


@dataclass
class Live:
    hub: Hub
    stats: StatsFeed


def start(app: Starlette) -> Live:
    """Start the hub (one LISTEN connection for this process) and the counters feed."""
    settings: Settings = app.state.settings
    dsn = settings.listen_database_url or settings.database_url
    assert dsn is not None
    hub = Hub(dsn)
    stats = StatsFeed(hub, app.state.pool)
    hub.start()
    stats.start()
    app.state.live = Live(hub=hub, stats=stats)
    return app.state.live


async def stop(app: Starlette) -> None:
    live: Live | None = getattr(app.state, "live", None)
    if live is None:
        return
    app.state.live = None
    await live.stats.stop()
    await live.hub.stop()


def running_hub(app: Starlette) -> Hub | None:
    live: Live | None = getattr(app.state, "live", None)
    return live.hub if live is not None else None


def hub_for(app: Starlette) -> Hub:
    """The app's hub; an app built around an injected pool (no lifespan) starts it here."""
    return running_hub(app) or start(app).hub
