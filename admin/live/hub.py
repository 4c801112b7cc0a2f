"""The per-process live event hub: one LISTEN connection, fan-out to bounded client queues.

Ordering. Event ids come from a sequence, so under concurrent writers they are not in
commit order: id 10 may commit after id 11. The hub releases events strictly in id order,
and only ids that are final (committed and visible, or never going to be). It reads the
highest id handed out so far (`allocated`), then takes an xid of its own; every writer
that holds an id <= allocated took its xid before drawing the id, so its xid is smaller.
The pair (allocated, xid) is settled once a later snapshot's xmin reaches that xid:
every transaction that could hold an id <= allocated has then ended. Everything
up to the newest settled `allocated` is released, in id order, and the released
watermark only moves forward. So every client sees one sequence, and a client resuming
after id N gets exactly the ids above N from the table.

The cost, by design: a writer transaction held open stalls the release of every id handed
out after it began, until it commits or rolls back (its own ids included).

Liveness. Notifications are wake-ups only; the table is the truth. The hub also polls on a
short, growing timer while a pair is unsettled, and every `health_interval` seconds
otherwise; that poll doubles as the health check (asyncpg never re-LISTENs by itself).
When the connection drops it reconnects with backoff, re-LISTENs and catches up from the
table, since the watermark says exactly where it stopped.

Heartbeats. One timer per process puts a shared comment frame into every queue every
`heartbeat_interval` seconds (proxies keep the connection open). The same tick cuts off
a client whose writer has been stuck in one send since the previous tick: it stopped
reading, and its queue may take long to fill at a low event rate.

Pacing. Each release costs one send per client, so with many clients connected the hub
releases at most once per `release_gap` (growing with the client count, capped at
`max_release_gap`): fewer, larger chunks. In that mode a poll takes no fresh xid while
an older pair is still pending, so each cycle is one dating poll then one settling poll
that releases everything written before the first; an event waits at most about one gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import asyncpg

from admin import db
from admin.live import events
from admin.live.events import OrderEvent
from admin.live.mailbox import Mailbox
from admin.ops import metrics

log = logging.getLogger("admin.hub")

CHANNEL = "order_events"
APPLICATION_NAME = "pg-admin-panel-listener"
# a writer held open would otherwise make the unsettled pairs pile up, one per poll
MAX_PENDING = 64
NOTHING_BELOW = 2**62


HEARTBEAT = b": ping\n\n"
CLOSED_WHILE_SENDING = "subscription closed while sending"


class Closed:
    """Put in a client's queue when the hub drops it (too slow, or shutting down)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass(eq=False)
class Batch:
    """Events released together, in id order; `frames` caches their encoding per filter
    (and per filter and content coding: see sse_feed)."""

    events: tuple[OrderEvent, ...]
    # sent after the events to every client, filtered or not (see Hub.send_with_next_release)
    extra: bytes = b""
    frames: dict[Hashable, bytes] = field(default_factory=dict)

    @property
    def last_id(self) -> int:
        return self.events[-1].id


@dataclass(eq=False)
class Broadcast:
    """Anything else sent to every client (rendered counters, chart), already encoded."""

    frame: bytes
    # `frame` gzip-compressed once, for every client that takes the stream compressed
    compressed: bytes | None = None


Message = Batch | Broadcast | Closed


class Subscription:
    """One client's bounded queue. `start` is the watermark when it joined: the hub
    delivers only ids above it, the client replays the rest from the table."""

    # one per connected client, however idle: no instance dict, and a lean queue
    __slots__ = ("_sends_at_tick", "closed", "queue", "sending", "sends", "start", "writer")

    def __init__(self, start: int, size: int) -> None:
        self.start = start
        self.queue: Mailbox[Message] = Mailbox(size)
        self.closed: str | None = None
        # kept up to date by the task writing to the client: closing interrupts a send
        # that may never finish (the client stopped reading and its socket buffer is full)
        self.writer: asyncio.Task[object] | None = None
        self.sending = False
        self.sends = 0
        self._sends_at_tick = -1

    def offer(self, message: Message) -> bool:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True

    def close(self, reason: str) -> None:
        """Free what is queued and leave only the end marker (the queue may be full)."""
        if self.closed is not None:
            return
        self.closed = reason
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(Closed(reason))
        if self.sending and self.writer is not None:
            self.writer.cancel(CLOSED_WHILE_SENDING)

    def stuck(self) -> bool:
        """True when the same send has been pending since the previous call."""
        stuck = self.sending and self.sends == self._sends_at_tick
        self._sends_at_tick = self.sends
        return stuck


class Hub:
    """Start once per process; `subscribe()` per client; `stop()` on shutdown."""

    def __init__(
        self,
        dsn: str,
        *,
        queue_size: int = 256,
        batch_limit: int = 500,
        health_interval: float = 2.0,
        query_timeout: float = 10.0,
        max_backoff: float = 5.0,
        gap_per_client: float = 25e-6,
        max_release_gap: float = 0.025,
        heartbeat_interval: float = 15.0,
        source: events.Source = events.ORDERS,
        application_name: str = APPLICATION_NAME,
    ) -> None:
        self._dsn = dsn
        self.source = source
        self._application_name = application_name
        self.queue_size = queue_size
        self._batch_limit = batch_limit
        self._health_interval = health_interval
        self._query_timeout = query_timeout
        self._max_backoff = max_backoff
        self._gap_per_client = gap_per_client
        self._max_release_gap = max_release_gap
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._extra = b""
        self._extra_timer: asyncio.TimerHandle | None = None
        self._last_release = 0.0
        self.watermark: int | None = None
        self._settled = 0
        self._pending: list[tuple[int, int]] = []
        self._subscribers: set[Subscription] = set()
        self.on_release: list[Callable[[Sequence[OrderEvent]], None]] = []
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connected = False
        self.reconnects = 0
        # when the first notification since the last release arrived (for the lag metric)
        self._notified_at: float | None = None

    # ---- lifecycle

    def start(self) -> None:
        if self._task is None:
            name = self.source.table.replace("_", "-")
            self._task = asyncio.create_task(self._run(), name=f"{name}-hub")
            self._heartbeat_task = asyncio.create_task(self._beat(), name=f"{name}-heartbeat")

    def close_all(self, reason: str) -> None:
        """End every stream now and refuse new ones (the server is shutting down)."""
        self._stopping = True
        for subscription in list(self._subscribers):
            subscription.close(reason)
        self._subscribers.clear()

    async def stop(self) -> None:
        self.close_all("shutdown")
        self._take_extra()
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
            self._heartbeat_task = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_ready(self, seconds: float) -> bool:
        """True once the watermark is known (the first poll after start settled)."""
        try:
            async with asyncio.timeout(seconds):
                await self._ready.wait()
        except TimeoutError:
            return False
        return True

    # ---- clients

    def subscribe(self) -> Subscription:
        assert self.watermark is not None, "wait_ready() first"
        subscription = Subscription(self.watermark, self.queue_size)
        if self._stopping:
            subscription.close("shutdown")
        else:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    @property
    def client_count(self) -> int:
        return len(self._subscribers)

    @property
    def release_gap(self) -> float:
        """Seconds between releases: sending to every client is the cost to amortise."""
        return min(self._max_release_gap, self._gap_per_client * len(self._subscribers))

    def broadcast(self, message: Batch | Broadcast) -> None:
        """Offer to every client; one whose queue is full is dropped, never waited for."""
        for subscription in list(self._subscribers):
            if not subscription.offer(message):
                self._subscribers.discard(subscription)
                subscription.close("too slow")

    async def _beat(self) -> None:
        heartbeat = Broadcast(HEARTBEAT)
        while True:
            await asyncio.sleep(self._heartbeat_interval)
            for subscription in list(self._subscribers):
                if subscription.stuck():
                    self._subscribers.discard(subscription)
                    subscription.close("too slow")
            self.broadcast(heartbeat)

    def send_with_next_release(self, frame: bytes, wait: float = 0.2) -> None:
        """Send `frame` to every client along with the next release, or on its own after
        `wait` seconds: one round of sends to every client instead of two. A newer
        frame replaces one still waiting."""
        self._extra = frame
        if self._extra_timer is None:
            self._extra_timer = asyncio.get_running_loop().call_later(wait, self._send_extra)

    def _take_extra(self) -> bytes:
        extra, self._extra = self._extra, b""
        if self._extra_timer is not None:
            self._extra_timer.cancel()
            self._extra_timer = None
        return extra

    def _send_extra(self) -> None:
        self._extra_timer = None
        extra = self._take_extra()
        if extra and not self._stopping:
            self.broadcast(Broadcast(extra))

    # ---- the listener loop

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                conn = await asyncpg.connect(
                    self._dsn,
                    timeout=self._query_timeout,
                    server_settings={
                        "application_name": self._application_name,
                        # polls take an xid to date what they read; no need to flush that
                        "synchronous_commit": "off",
                    },
                )
            except (TimeoutError, asyncpg.PostgresError, *db.CONNECTION_FAILURES) as exc:
                log.warning("listener cannot connect (retry in %.1fs): %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = 0.1
            try:
                await db.install_codecs(conn)
                await self._listen(conn)
            except (TimeoutError, asyncpg.PostgresError, *db.CONNECTION_FAILURES) as exc:
                log.warning("listener connection lost: %s", exc)
            except Exception:
                # the hub must outlive any surprise (asyncpg's internal client errors after
                # a cancelled query, say): start over on a fresh connection
                log.exception("listener failed; reconnecting")
                await asyncio.sleep(backoff)
            finally:
                self.connected = False
                conn.terminate()
            self.reconnects += 1
            metrics.LISTENER_RECONNECTS.inc()

    async def _listen(self, conn: asyncpg.Connection) -> None:
        lost = asyncio.Event()

        def on_terminated(_: object) -> None:
            lost.set()
            self._wake.set()

        def on_notify(*_: object) -> None:
            if self._notified_at is None:
                self._notified_at = time.monotonic()
            self._wake.set()

        conn.add_termination_listener(on_terminated)
        if self.source.notifies:
            await conn.add_listener(self.source.table, on_notify)
        self.connected = True
        log.info("following %s", self.source.table)
        interval = self._health_interval
        while not lost.is_set():
            # catch up right away on (re)connect, then after each wake-up or timer
            async with asyncio.timeout(self._query_timeout):
                progressed = await self._poll(conn)
            if lost.is_set():
                break
            if self._pending:
                interval = 0.005 if progressed else min(interval * 2, 0.2)
            else:
                interval = self._health_interval
            if self._wake.is_set() and not progressed:
                # a notification during the poll: poll again soon, not in a tight loop
                interval = min(interval, 0.005)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            await self._pace()
            self._wake.clear()

    async def _pace(self) -> None:
        """Wait out the rest of the release gap; notifications arriving meanwhile are
        picked up by the poll that follows."""
        delay = self._last_release + self.release_gap - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _poll(self, conn: asyncpg.Connection) -> bool:
        """One round: returns True if it released events or settled a pair."""
        allocated = await events.last_allocated_id(conn, self.source.table)
        pending = list(self._pending)
        newest = max([self.watermark or 0, self._settled] + [pair[0] for pair in pending])
        fresh = allocated > newest
        take_xid = fresh and not (pending and self.release_gap > 0)
        if not pending and not fresh and self.watermark is not None:
            if self.watermark >= self._settled:
                return False
        # before the first watermark nothing is published: start from "now"
        released = self.watermark if self.watermark is not None else NOTHING_BELOW
        result = await events.poll(
            conn,
            released=released,
            settled=self._settled,
            pending=pending,
            limit=self._batch_limit,
            take_xid=take_xid,
            source=self.source,
        )
        remaining = [(a, x) for a, x in pending if x > result.xmin]
        settled_any = len(remaining) < len(pending)
        if take_xid and result.xid is not None:
            remaining.append((allocated, result.xid))
        elif fresh:
            # ids not dated yet: the next poll must come soon, whether or not one notifies
            self._wake.set()
        if len(remaining) > MAX_PENDING:
            # keeps the oldest (they settle first) and the newest; releasing later is safe
            del remaining[MAX_PENDING // 2 : len(remaining) - MAX_PENDING // 2]
        self._pending = remaining
        self._settled = max(self._settled, result.horizon)
        if self.watermark is None:
            if self._settled > 0 or not self._pending:
                self.watermark = self._settled
                self._ready.set()
                log.info("%s start after id %d", self.source.table, self.watermark)
            return settled_any or take_xid
        if not result.events:
            if self.watermark < self._settled:
                # nothing visible between: those ids were rolled back or never used
                self.watermark = self._settled
            return settled_any or take_xid
        if len(result.events) >= self._batch_limit:
            self.watermark = result.events[-1].id
            self._wake.set()
        else:
            self.watermark = self._settled
        batch = Batch(tuple(result.events), extra=self._take_extra())
        self._last_release = time.monotonic()
        if self._notified_at is not None:
            metrics.EVENT_LAG_SECONDS.observe(self._last_release - self._notified_at)
            self._notified_at = None
        self.broadcast(batch)
        for hook in self.on_release:
            hook(batch.events)
        return True
