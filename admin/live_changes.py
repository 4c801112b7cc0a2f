"""GET /live/changes: changes to every table the staff member may view, as server-sent events.

One stream serves a whole browser (its tabs share it, see static/live.js); `?tables=a,b`
narrows it to some tables. A table the staff member may not view is never in the stream:
asking for one is a 403, and changes to it are dropped before anything is encoded, so not
even its ids reach the browser. Changes carry the table, the operation, the key and who
made it, never a column value: a client reads the row itself through the routes that check
permissions. Resumable by `Last-Event-ID` like /events, with the same caps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin import changes, db, live, sse, sse_replay, sse_slots, stream_guard
from admin.access import current_staff
from admin.changes import Change
from admin.hub import Batch, Broadcast, Subscription
from admin.resources import keys
from admin.resources.resolve import current_registry
from admin.resources.spec import Action
from admin.sse_response import Emit, EventStreamResponse

log = logging.getLogger("admin.live_changes")

REPLAY_BATCH = 200
MAX_TABLES_PARAM = 4000


@dataclass(frozen=True, eq=False)
class Scope:
    """What one stream may receive: table (schema, name) -> URL slug. Shared by every
    stream of the same role asking for the same tables."""

    key: str
    slugs: dict[tuple[str, str], str]

    def frames(self, items: tuple[Change, ...] | list[Change]) -> bytes:
        out = []
        for change in items:
            slug = self.slugs.get(change.name)
            if slug is not None:
                segment = keys.encode(change.key) if change.key is not None else None
                out.append(change.frame(slug, segment))
        return b"".join(out)


_scopes: dict[tuple[int, str, str], Scope] = {}


async def _scope(request: Request) -> Scope:
    raw = request.query_params.get("tables", "")
    if len(raw) > MAX_TABLES_PARAM:
        raise HTTPException(400, "Too many tables asked for: leave `tables` out for all.")
    asked = sorted({s for s in raw.split(",") if s.strip()})
    role = current_staff(request).role
    async with sse_replay.connection(request) as conn:
        found = await current_registry(request, conn)
    cache_key = (id(found.tables), role, ",".join(asked))
    scope = _scopes.get(cache_key)
    if scope is not None:
        return scope
    if asked:
        slugs = {}
        for slug in asked:
            table = found.get(slug)
            if table is None:
                raise HTTPException(404, f"There is no table {slug[:80]!r}.")
            if not table.allows(role, Action.VIEW):
                raise HTTPException(403, f"Your role may not view {table.plural}.")
            slugs[(table.info.schema, table.info.name)] = table.slug
    else:
        slugs = {(t.info.schema, t.info.name): t.slug for t in found.visible_to(role)}
    if len(_scopes) > 256:
        _scopes.clear()
    scope = _scopes[cache_key] = Scope(f"{role}:{','.join(asked)}:{id(found.tables)}", slugs)
    return scope


async def changes_stream(request: Request) -> Response:
    after = sse.resume_point(request)
    scope = await _scope(request)
    running = live.live_for(request.app)
    hub, slots = running.changes, running.slots
    key = sse_slots.session_key(request)
    slots.take(key)
    try:
        if not await hub.wait_ready(sse.READY_SECONDS):
            raise db.DatabaseUnavailable("live changes are not available yet")
        subscription = hub.subscribe()
        try:
            reload = after is not None and await _too_far_behind(request, after, subscription.start)
        except BaseException:
            hub.unsubscribe(subscription)
            raise
    except BaseException:
        slots.release(key)
        raise

    login = stream_guard.login_of(request)
    running.guard.watch(login, subscription)

    def end() -> None:
        running.guard.forget(login, subscription)
        hub.unsubscribe(subscription)
        slots.release(key)

    feed = _Feed(request, subscription, scope, None if reload else after, reload)
    return EventStreamResponse(subscription, feed.prelude, feed.render, end)


async def _too_far_behind(request: Request, after: int, upto: int) -> bool:
    if upto <= after:
        return False
    settings = request.app.state.settings
    async with sse_replay.connection(request) as conn:
        return await changes.too_far_behind(
            conn,
            after,
            upto,
            max_events=settings.sse_replay_max_events,
            max_hours=settings.sse_replay_max_hours,
        )


async def _replay(
    request: Request, scope: Scope, after: int, upto: int, stopped: Callable[[], bool]
) -> AsyncIterator[bytes]:
    """Frames for the changes in (after, upto] in id order, taking turns like /events."""
    last = after
    turns = live.live_for(request.app).replay_turns
    tables = list(scope.slugs)
    while last < upto and not stopped():
        async with turns:
            if stopped():
                return
            began = time.perf_counter()
            async with sse_replay.connection(request) as conn:
                found, last = await changes.between(
                    conn, last, upto, tables=tables, limit=REPLAY_BATCH
                )
            encoded = scope.frames(found)
            await asyncio.sleep(time.perf_counter() - began)
        if encoded:
            yield encoded


class _Feed:
    __slots__ = ("_after", "_last", "_reload", "_request", "_scope", "_subscription")

    def __init__(
        self,
        request: Request,
        subscription: Subscription,
        scope: Scope,
        after: int | None,
        reload: bool,
    ) -> None:
        self._request = request
        self._subscription = subscription
        self._scope = scope
        self._after = after
        self._reload = reload
        self._last = subscription.start

    async def prelude(self, emit: Emit) -> bool:
        after, start = self._after, self._subscription.start
        if after is None:
            await emit(sse._opening(start))
            if self._reload:
                await emit(sse._reload(start))
            return True
        await emit(sse._opening(after))
        replay = _replay(self._request, self._scope, after, start, self._gone)
        try:
            async with contextlib.aclosing(replay):
                async for chunk in replay:
                    await emit(chunk)
        except db.DatabaseUnavailable as exc:
            log.warning("replay failed, the client will retry: %s", exc)
            return False
        if self._gone():
            return False
        self._last = max(after, start)
        return True

    def _gone(self) -> bool:
        return self._subscription.closed is not None

    def render(self, message: Batch | Broadcast) -> bytes:
        if isinstance(message, Broadcast):
            return message.frame
        if message.last_id <= self._last:
            return b""
        scope = self._scope
        if message.events[0].id > self._last:
            chunk = message.frames.get(scope.key)
            if chunk is None:
                chunk = message.frames[scope.key] = scope.frames(message.events)
        else:
            chunk = scope.frames([c for c in message.events if c.id > self._last])
        self._last = message.last_id
        return chunk
