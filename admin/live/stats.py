"""Pushes fresh counters and chart to every live client, at most once a second.

One query pair per process however many clients are connected: the hub calls `touch()`
on each release, a single task coalesces those into a refresh, and a minute tick keeps
the chart's window moving while clients are connected and nothing happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import asyncpg

from admin import db
from admin.background import Background
from admin.live import order_stats
from admin.live import view as live_view
from admin.live.events import OrderEvent
from admin.live.hub import Hub

log = logging.getLogger("admin.live_stats")


class StatsFeed(Background):
    task_name = "dashboard-stats"

    def __init__(
        self,
        hub: Hub,
        pool: asyncpg.Pool,
        *,
        min_interval: float = 1.0,
        tick: float = 60.0,
        day_zone: str | None = None,
    ) -> None:
        super().__init__()
        self._hub = hub
        self._pool = pool
        self._min_interval = min_interval
        self._tick = tick
        self._day_zone = day_zone
        self._dirty = asyncio.Event()
        hub.on_release.append(self.touch)

    def touch(self, _: Sequence[OrderEvent] = ()) -> None:
        self._dirty.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._tick):
                    await self._dirty.wait()
            self._dirty.clear()
            if self._hub.client_count == 0:
                continue
            try:
                async with db.acquire(self._pool, 5.0) as conn:
                    counters = await order_stats.today(conn, self._day_zone)
                    minutes = await order_stats.per_minute(conn)
            except (db.DatabaseUnavailable, asyncpg.PostgresError) as exc:
                log.warning("dashboard counters not refreshed: %s", exc)
            except Exception:
                log.exception("dashboard counters not refreshed")
            else:
                self._hub.send_with_next_release(live_view.stats_frames(counters, minutes))
            await asyncio.sleep(self._min_interval)
