"""GET /live/changes: changes to every table the staff member may view, as server-sent events.

One stream serves a whole browser (its tabs share it, see static/live.js); `?tables=a,b`
narrows it to some tables. A table the staff member may not view is never in the stream:
asking for one is a 403, and changes to it are dropped before anything is encoded, so not
even its ids reach the browser. Changes carry the table, the operation, the key and who
made it, never a column value: a client reads the row itself through the routes that check
permissions. Resumable by `Last-Event-ID` like /events, with the same caps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin.access import current_staff
from admin.live import changes, order_feed, sse_feed, sse_replay
from admin.live import runtime as live
from admin.live.changes import Change
from admin.live.hub import Subscription
from admin.resources import keys
from admin.resources.resolve import current_registry
from admin.resources.spec import Action

REPLAY_BATCH = 200
MAX_TABLES_PARAM = 4000


@dataclass(frozen=True, eq=False)
class Scope:
    """What one stream may receive: table (schema, name) -> URL slug. Shared by every
    stream of the same role asking for the same tables."""

    key: str
    slugs: dict[tuple[str, str], str]

    def frames(self, items: Sequence[Change]) -> bytes:
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
    after = order_feed.resume_point(request)
    scope = await _scope(request)
    hub = live.live_for(request.app).changes

    def feed(subscription: Subscription, resume: int | None, reload: bool) -> sse_feed.Feed:
        return _ChangesFeed(request, subscription, resume, reload, scope)

    return await sse_feed.open_stream(request, hub, after, changes.too_far_behind, feed)


class _ChangesFeed(sse_feed.Feed):
    """Changes to the tables of one scope."""

    __slots__ = ("_scope",)

    def __init__(
        self,
        request: Request,
        subscription: Subscription,
        after: int | None,
        reload: bool,
        scope: Scope,
    ) -> None:
        super().__init__(request, subscription, after, reload)
        self._scope = scope

    def replay(self, after: int, upto: int) -> AsyncIterator[bytes]:
        scope, tables = self._scope, list(self._scope.slugs)

        async def read(conn: asyncpg.Connection, last: int) -> tuple[bytes, int, bool]:
            found, last = await changes.between(conn, last, upto, tables=tables, limit=REPLAY_BATCH)
            return scope.frames(found), last, last < upto

        return sse_replay.in_turns(self._request, after, upto, read, self.gone)

    @property
    def frames_key(self) -> str:
        return self._scope.key

    def encode(self, items: Sequence[Change]) -> bytes:
        return self._scope.frames(items)
