"""simulate-orders: a steady trickle of new orders and status changes for the live dashboard."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import asyncpg

from admin import db
from admin.cli_support import CommandError, database
from admin.migrations import migrate
from admin.settings import Settings

TICK_SECONDS = 0.1
NEW_ORDER_SHARE = 0.4
IN_FLIGHT_LIMIT = 5_000
APPLICATION_NAME = "pg-admin simulate"
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 10.0
CLOSE_SECONDS = 5.0
# status -> (next statuses, their weights)
NEXT_STATUS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "pending": (("paid", "cancelled"), (88, 12)),
    "paid": (("shipped", "cancelled"), (95, 5)),
    "shipped": (("delivered",), (1,)),
}

_INSERT_ORDERS = """
INSERT INTO orders (user_id, total)
SELECT coalesce((SELECT u.id FROM users u WHERE u.id >= c.draw ORDER BY u.id LIMIT 1),
                (SELECT min(u.id) FROM users u)),
       c.total
FROM unnest($1::bigint[], $2::numeric[]) AS c(draw, total)
RETURNING id
"""
# Only rows still in the status we saw move on: a change made meanwhile by the panel wins.
_ADVANCE_ORDERS = """
UPDATE orders AS o SET status = c.new_status
FROM unnest($1::bigint[], $2::text[], $3::text[]) AS c(id, new_status, old_status)
WHERE o.id = c.id AND o.status = c.old_status
RETURNING o.id, o.status
"""


def cmd_simulate_orders(settings: Settings, args: argparse.Namespace) -> int:
    with database(settings) as ready:
        asyncio.run(_until_stopped(ready.database_url or "", args.rate))
    return 0


async def _until_stopped(dsn: str, rate: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    totals = await simulate_orders(dsn, rate, stop)
    print(f"stopped: {totals['created']:,} orders created, {totals['changed']:,} status changes")


@dataclass
class _Simulation:
    rng: random.Random
    low_user: int
    high_user: int
    in_flight: dict[int, str] = field(default_factory=dict)
    this_second: Counter[str] = field(default_factory=Counter)
    totals: Counter[str] = field(default_factory=Counter)

    def remember(self, order_id: int, status: str) -> None:
        self.in_flight[order_id] = status
        if len(self.in_flight) > IN_FLIGHT_LIMIT:
            del self.in_flight[next(iter(self.in_flight))]

    def new_orders(self, count: int) -> tuple[list[int], list[Decimal]]:
        draws = [self.rng.randint(self.low_user, self.high_user) for _ in range(count)]
        totals = [
            Decimal(f"{min(self.rng.lognormvariate(3.8, 0.9), 99_999.0):.2f}") for _ in range(count)
        ]
        return draws, totals

    def status_changes(self, count: int) -> tuple[list[int], list[str], list[str]]:
        chosen = self.rng.sample(list(self.in_flight), min(count, len(self.in_flight)))
        old = [self.in_flight[order_id] for order_id in chosen]
        new = [self.rng.choices(*NEXT_STATUS[status])[0] for status in old]
        return chosen, new, old


async def simulate_orders(
    dsn: str, rate: float, stop: asyncio.Event, *, seed: int | None = None
) -> Counter[str]:
    """Create orders and move them through their statuses at about `rate` per second
    until `stop` is set; prints one line per second. Returns the totals.

    A connection lost on the way (a PostgreSQL restart, a terminated backend) is reopened
    with backoff, printing a line each time; only the first connection must succeed.
    """
    try:
        conn = await _connect(dsn)
    except Exception as exc:
        if db.is_connection_failure(exc):
            raise CommandError(f"cannot reach the database: {exc}") from None
        raise
    try:
        sim = await _prepare(conn, seed)
        while True:
            try:
                await _run(conn, sim, rate, stop)
                break
            except Exception as exc:
                if not db.is_connection_failure(exc):
                    raise
                conn.terminate()
                reconnected = await _reconnect(dsn, stop, exc)
                if reconnected is None:
                    break
                conn = reconnected
        sim.totals.update(sim.this_second)
        return sim.totals
    except Exception as exc:
        if db.is_connection_failure(exc):
            raise CommandError(f"lost the database connection: {exc}") from None
        raise
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), CLOSE_SECONDS)
        conn.terminate()


async def _connect(dsn: str) -> asyncpg.Connection:
    # no named statements: DATABASE_URL may be a transaction pooler (PgBouncer)
    return await asyncpg.connect(
        dsn, server_settings={"application_name": APPLICATION_NAME}, statement_cache_size=0
    )


async def _prepare(conn: asyncpg.Connection, seed: int | None) -> _Simulation:
    await migrate(conn)
    low, high = await conn.fetchrow("SELECT min(id), max(id) FROM users")
    if low is None:
        raise CommandError(
            "there are no users to place orders for: load some first with python -m admin demo-data"
        )
    sim = _Simulation(random.Random(seed), low, high)
    for row in await conn.fetch(
        "SELECT id, status FROM orders WHERE status = any($1::text[]) ORDER BY id DESC LIMIT 500",
        list(NEXT_STATUS),
    ):
        sim.remember(row["id"], row["status"])
    return sim


async def _reconnect(
    dsn: str, stop: asyncio.Event, lost: BaseException
) -> asyncpg.Connection | None:
    """A new connection once the database answers again; None when stopped meanwhile."""
    delay = RECONNECT_FIRST_SECONDS
    print(f"lost the database connection ({lost}); reconnecting", flush=True)
    while not stop.is_set():
        try:
            conn = await _connect(dsn)
        except Exception as exc:
            if not db.is_connection_failure(exc):
                raise
            print(f"database unreachable ({exc}); retrying in {delay:.0f} s", flush=True)
        else:
            print("reconnected", flush=True)
            return conn
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, RECONNECT_MAX_SECONDS)
    return None


async def _run(
    conn: asyncpg.Connection, sim: _Simulation, rate: float, stop: asyncio.Event
) -> None:
    budget = 0.0
    last_tick = next_report = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        budget += rate * (now - last_tick)
        last_tick = now
        due = int(budget)
        budget -= due
        if due:
            creates = sum(1 for _ in range(due) if sim.rng.random() < NEW_ORDER_SHARE)
            changes = due - creates
            if changes > len(sim.in_flight):
                creates, changes = due - len(sim.in_flight), len(sim.in_flight)
            await _step(conn, sim, creates, changes)
        if now >= next_report + 1.0:
            next_report = now
            _report(sim)
        try:
            await asyncio.wait_for(stop.wait(), TICK_SECONDS)
        except TimeoutError:
            pass


async def _step(conn: asyncpg.Connection, sim: _Simulation, creates: int, changes: int) -> None:
    # counted once committed: a step whose connection dies mid-way wrote nothing
    counts: Counter[str] = Counter()
    still_moving: list[tuple[int, str]] = []
    async with conn.transaction():
        if creates:
            draws, totals = sim.new_orders(creates)
            rows = await conn.fetch(_INSERT_ORDERS, draws, totals)
            still_moving += [(row["id"], "pending") for row in rows]
            counts["created"] += creates
        if changes:
            ids, new, old = sim.status_changes(changes)
            for order_id in ids:
                del sim.in_flight[order_id]
            for row in await conn.fetch(_ADVANCE_ORDERS, ids, new, old):
                if row["status"] in NEXT_STATUS:
                    still_moving.append((row["id"], row["status"]))
                counts[row["status"]] += 1
                counts["changed"] += 1
    for order_id, status in still_moving:
        sim.remember(order_id, status)
    sim.this_second.update(counts)


def _report(sim: _Simulation) -> None:
    counts = sim.this_second
    moved = ", ".join(
        f"{counts[status]} {status}"
        for status in ("paid", "shipped", "delivered", "cancelled")
        if counts[status]
    )
    print(
        f"{datetime.now():%H:%M:%S} +{counts['created']} orders,"
        f" {counts['changed']} status changes" + (f" ({moved})" if moved else ""),
        flush=True,
    )
    sim.totals.update(counts)
    counts.clear()
