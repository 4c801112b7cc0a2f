"""Every administered table, by URL slug: read from the catalog, refreshed when it changes.

One registry per app. The catalog is read on first use, then its fingerprint (one cheap
query) is checked at most every `CHECK_SECONDS`, so a table created or altered while the
panel runs appears within seconds; `refresh()` forces a read (the refresh action, and a
statement that failed because a table or column no longer exists). A change that leaves
every column and constraint as it was (a TRUNCATE, an ANALYZE that moves a table's size
estimate, a rename) is read in the background: the request that noticed it does not wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence

import asyncpg
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from admin.declarations import DECLARATIONS
from admin.live import capture
from admin.resources import catalog, cells, keys, reads, rows
from admin.resources.model import Table
from admin.resources.spec import Action, Resource
from admin.resources.tables import TableInfo

log = logging.getLogger("admin.resources")

CHECK_SECONDS = 5.0
# the panel's own tables: never resources
INTERNAL_TABLES = frozenset(
    {
        "staff",
        "login_attempts",
        "audit_log",
        "schema_migrations",
        "order_events",
        "resource_changes",
        "revoked_sessions",
        "saved_views",
        "live_presence",
    }
)
# first path segments the panel's own pages use: a table with such a name is served under
# its qualified slug (public.account) instead
RESERVED_SLUGS = frozenset(
    {
        "",
        "login",
        "logout",
        "static",
        "healthz",
        "events",
        "live",
        "staff",
        "account",
        "audit",
        "tables",
        "metrics",
    }
)


def slug_for(schema: str, name: str) -> str:
    bare = keys.tilde_encode(name)
    if schema == "public" and bare not in RESERVED_SLUGS:
        return bare
    return f"{keys.tilde_encode(schema)}.{bare}"


class Registry:
    def __init__(
        self,
        schemas: Sequence[str],
        declarations: Iterable[Resource] = DECLARATIONS,
        *,
        check_seconds: float = CHECK_SECONDS,
    ) -> None:
        self.schemas = list(schemas)
        self.declarations = {(d.schema, d.table): d for d in declarations}
        self.check_seconds = check_seconds
        self.tables: dict[str, Table] = {}
        self.by_name: dict[tuple[str, str], Table] = {}
        self._visible: dict[str, list[Table]] = {}
        self._fingerprint: str | None = None
        self._checked_at = 0.0
        self._lock = asyncio.Lock()
        # change capture is installed off the request path, on a connection of its own
        self.pool: asyncpg.Pool | None = None
        self._capture_task: asyncio.Task[None] | None = None
        self._capture_again = False
        self._reading: asyncio.Task[None] | None = None
        self._locked_out = False

    @property
    def due(self) -> bool:
        """Whether the next `current` call reads the catalog's fingerprint."""
        return (
            self._fingerprint is None or time.monotonic() - self._checked_at >= self.check_seconds
        )

    async def current(self, conn: asyncpg.Connection) -> Registry:
        """Up to date within `check_seconds`: reads the catalog when its fingerprint moved."""
        if (
            self._fingerprint is not None
            and time.monotonic() - self._checked_at < self.check_seconds
        ):
            return self
        async with self._lock:
            if (
                self._fingerprint is None
                or time.monotonic() - self._checked_at >= self.check_seconds
            ):
                print_ = await catalog.fingerprint(conn, self.schemas)
                if print_ != self._fingerprint or self._locked_out:
                    if self.pool is not None and catalog.same_shape(print_, self._fingerprint):
                        self._read_in_background(self.pool)
                    elif self._fingerprint is None:
                        await self._read(conn, print_)
                    else:
                        try:
                            await self._read(conn, print_)
                        except catalog.CatalogLocked as exc:
                            # the catalog as it was serves until the next check
                            log.warning("catalog not read: %s", exc)
                self._checked_at = time.monotonic()
        return self

    def _read_in_background(self, pool: asyncpg.Pool) -> None:
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_later(pool), name="catalog-read")

    async def _read_later(self, pool: asyncpg.Pool) -> None:
        try:
            async with pool.acquire() as conn, self._lock:
                await self._read(conn, await catalog.fingerprint(conn, self.schemas))
        except (
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            catalog.CatalogLocked,
        ) as exc:
            # the next check finds the same change and tries again
            log.warning("catalog not read: %s", exc)
        except Exception:
            log.exception("catalog not read")

    async def refresh(self, conn: asyncpg.Connection) -> None:
        """Read the catalog now, and wait for the change capture (an explicit refresh)."""
        async with self._lock:
            await self._read(conn, await catalog.fingerprint(conn, self.schemas))
            self._checked_at = time.monotonic()
        await self.capture_settled()

    async def capture_settled(self) -> None:
        """Wait for the background catalog read and capture install (if any runs) to finish."""
        while self._reading is not None and not self._reading.done():
            await asyncio.shield(self._reading)
        while self._capture_task is not None and not self._capture_task.done():
            await asyncio.shield(self._capture_task)

    async def _read(self, conn: asyncpg.Connection, fingerprint: str) -> None:
        started = time.perf_counter()
        known = {t.info.oid: t.info for t in self.tables.values()}
        read = await catalog.read_catalog(conn, self.schemas, known)
        self._install(read.tables)
        self._fingerprint = fingerprint
        self._locked_out = bool(read.locked)  # left as they were: the next check reads them
        if self.pool is None:
            # no pool to work from (a bare registry): on this connection, now
            await self._capture(conn, fingerprint)
        elif self._capture_task is None or self._capture_task.done():
            self._capture_task = asyncio.create_task(
                self._capture_in_background(self.pool, fingerprint), name="change-capture"
            )
        else:
            self._capture_again = True
        log.info(
            "catalog read: %d resources in %.0f ms",
            len(self.tables),
            (time.perf_counter() - started) * 1000,
        )

    async def _capture_in_background(self, pool: asyncpg.Pool, fingerprint: str) -> None:
        """Install what capture is missing without holding up any page: a table whose lock
        a long transaction holds waits up to a second, here, not in a request."""
        while True:
            self._capture_again = False
            try:
                async with pool.acquire() as conn:
                    await self._capture(conn, fingerprint)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("change capture not checked: %s", exc)
                async with self._lock:
                    if self._fingerprint == fingerprint:
                        self._fingerprint = ""  # tried again at the next check
            except Exception:
                log.exception("change capture not checked")
            if not self._capture_again:
                return
            fingerprint = self._fingerprint or ""

    async def _capture(self, conn: asyncpg.Connection, fingerprint: str) -> None:
        installed, missed = await capture.ensure(conn, [t.info for t in self.tables.values()])
        await capture.drop_orphans(conn)
        # New triggers touch pg_class, so the fingerprint moves: the next check reads the
        # catalog again (and finds nothing to install). Taking the fingerprint they left
        # instead would also take in any DDL that landed meanwhile, unread (a column added
        # while a new table's capture was installed stayed off its form). A table without
        # capture yet is tried at the next check too.
        if self._fingerprint == fingerprint and (installed or missed):
            self._fingerprint = ""

    def _install(self, infos: list[TableInfo]) -> None:
        tables: dict[str, Table] = {}
        by_name: dict[tuple[str, str], Table] = {}
        for info in sorted(infos, key=lambda t: (t.schema != "public", t.schema, t.name)):
            if info.schema == "public" and info.name in INTERNAL_TABLES:
                continue
            declaration = self.declarations.get((info.schema, info.name))
            table = Table(info, declaration, slug_for(info.schema, info.name))
            tables[table.slug] = table
            by_name[(info.schema, info.name)] = table
        for table in tables.values():
            _bind(table, by_name)
        self.tables = tables
        self.by_name = by_name
        self._visible = {}

    def get(self, slug: str) -> Table | None:
        return self.tables.get(slug)

    def named(self, schema: str, name: str) -> Table | None:
        return self.by_name.get((schema, name))

    def visible_to(self, role: str) -> list[Table]:
        """Declared tables first (in declaration order), then the rest by name."""
        found = self._visible.get(role)
        if found is None:
            order = {key: i for i, key in enumerate(self.declarations)}
            allowed = [t for t in self.tables.values() if t.allows(role, Action.VIEW)]
            found = self._visible[role] = sorted(
                allowed,
                key=lambda t: (order.get((t.info.schema, t.info.name), len(order)), t.slug),
            )
        return found


def _bind(table: Table, by_name: dict[tuple[str, str], Table]) -> None:
    """What a table needs from the others: referenced tables, renderers, select lists."""
    table.targets = {
        c.name: by_name.get((c.reference.ref_schema, c.reference.ref_table))
        for c in table.references
        if c.reference is not None
    }
    table.list_cells, table.list_layout = rows.layout(table, table.list_columns)
    table.detail_cells = tuple(
        (c, cells.renderer(c, table.targets.get(c.name), full=True)) for c in table.columns
    )
    table.list_select = reads.select_list(table, table.list_columns, table.targets)
    table.detail_select = reads.select_list(table, table.columns, table.targets)


def registry(request: HTTPConnection) -> Registry:
    """The app's registry (made on first use; its catalog is read by `current`)."""
    return registry_of(request.app)


async def read_at_startup(app: Starlette) -> None:
    """Read the catalog and install the change capture as the server starts, in the
    background, so that the first page finds both done."""
    try:
        async with app.state.pool.acquire() as conn:
            await registry_of(app).current(conn)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, catalog.CatalogLocked) as exc:
        log.warning("catalog not read at startup (the first page reads it): %s", exc)


def registry_of(app: Starlette) -> Registry:
    state = app.state
    found: Registry | None = getattr(state, "registry", None)
    if found is None:
        settings = state.settings
        found = state.registry = Registry(
            settings.admin_schemas, check_seconds=settings.catalog_check_s
        )
        found.pool = getattr(state, "pool", None)
    return found
