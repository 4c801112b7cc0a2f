"""CSV export: COPY (SELECT ...) TO STDOUT streamed through a bounded queue.

The COPY runs in its own task and blocks on the queue when the client reads slowly, so
memory stays at a few chunks whatever the table size. However the response ends (finished,
client gone, task cancelled by a shutdown), the COPY task is cancelled, the connection goes
back to the pool (terminated if it cannot be brought back to idle in time) and the outcome
is written to the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass

import anyio
import asyncpg
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from admin import db
from admin.csvio import export_split as split
from admin.csvio.formulas import neutralised
from admin.csvio.tables import VERSION, CsvTable
from admin.sql import quote_ident

log = logging.getLogger("admin.csv_export")

QUEUE_CHUNKS = 16
# how long COPY may wait for a stalled client before the export is abandoned
PUT_TIMEOUT_SECONDS = 60.0
CANCEL_WAIT_SECONDS = 5.0


def _select_list(
    spec: CsvTable, raw: bool, names: Sequence[str] | None, decimal_comma: bool
) -> str:
    """The exported columns; text cells that a spreadsheet would run as a formula get a '."""
    protected = {c.name for c in spec.columns if c.neutralise}
    decimals = {c.name for c in spec.columns if c.decimal}
    parts = []
    for name in names or spec.export_names:
        quoted = quote_ident(name)
        if name == VERSION and spec.version_sql is not None:
            parts.append(f"{spec.version_sql} AS {quoted}")
        elif name in protected and not raw:
            parts.append(f"{neutralised(quoted)} AS {quoted}")
        elif name in decimals and decimal_comma:
            parts.append(f"replace({quoted}::text, '.', ',') AS {quoted}")
        else:
            parts.append(quoted)
    return ", ".join(parts)


def export_query(
    spec: CsvTable,
    where: str,
    order_by: str,
    *,
    raw: bool,
    names: Sequence[str] | None = None,
    decimal_comma: bool = False,
) -> str:
    """The SELECT that COPY (...) TO STDOUT (FORMAT csv, HEADER) runs for `spec`'s table;
    `names`: the columns to export (default: every column an import accepts)."""
    select = _select_list(spec, raw, names, decimal_comma)
    return f"SELECT {select} FROM {spec.qualified} AS t {where} {order_by}"


@dataclass
class ExportOutcome:
    rows: int | None = None
    completed: bool = False
    bytes: int = 0
    halves: bool = False  # produced in two halves at once (csvio.export_split)


OnFinish = Callable[[asyncpg.Connection, ExportOutcome], Awaitable[None]]


class Export:
    """A running COPY TO on a pooled connection, read chunk by chunk.

    `active` is the set of the process's running exports: the lifespan aborts what is left
    in it before closing the pool, so a shutdown never waits on a client that stopped reading.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        conn: asyncpg.Connection,
        query: str,
        args: list[object],
        on_finish: OnFinish,
        active: set[Export],
        audit_pool: asyncpg.Pool | None = None,
        delimiter: str = ",",
        transform: Callable[[bytes], bytes] | None = None,
        halves: split.SplitPlan | None = None,
    ) -> None:
        self._halves = halves
        self._delimiter = delimiter
        self._transform = transform
        self._pool = pool
        # the COPY may read from a replica; the audit entry is a write, for the primary
        self._audit_pool = audit_pool or pool
        self._conn = conn
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUE_CHUNKS)
        self._on_finish = on_finish
        self._active = active
        self._closing: asyncio.Task[None] | None = None
        self.outcome = ExportOutcome()
        active.add(self)
        self._task = asyncio.create_task(self._copy(query, args))

    async def _put(self, chunk: bytes | bytearray | memoryview) -> None:
        # asyncpg reuses its buffer: the chunk must be copied before the next one arrives
        data = bytes(chunk)
        if self._transform is not None:
            data = self._transform(data)
        self.outcome.bytes += len(data)
        if not self._queue.full():
            self._queue.put_nowait(data)
        else:
            await asyncio.wait_for(self._queue.put(data), PUT_TIMEOUT_SECONDS)

    async def _copy(self, query: str, args: list[object]) -> None:
        try:
            if self._halves is not None:
                rows = await self._copy_in_halves(self._halves, query, args)
            else:
                async with self._conn.transaction():
                    await self._conn.execute("SET LOCAL statement_timeout = 0")
                    rows = await self._copy_part(query, args, header=True)
            self.outcome.rows = rows
            self.outcome.completed = True
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)

    async def _copy_part(self, query: str, args: list[object], *, header: bool) -> int:
        status = await self._conn.copy_from_query(
            query, *args, output=self._put, format="csv", header=header, delimiter=self._delimiter
        )
        return int(status.split()[-1])

    async def _copy_in_halves(self, plan: split.SplitPlan, query: str, args: list[object]) -> int:
        async with self._conn.transaction(isolation="repeatable_read"):
            await self._conn.execute("SET LOCAL statement_timeout = 0")
            found = await split.plan_halves(self._conn, plan)
            helper = None if found is None else await db.spare(self._pool)
            if found is None or helper is None:
                return await self._copy_part(query, args, header=True)
            halves, snapshot = found
            self.outcome.halves = True
            spool = split.new_spool()
            second = asyncio.create_task(
                split.spool_half(helper, snapshot, halves.second, args, self._delimiter, spool)
            )
            try:
                rows = await self._copy_part(halves.first, args, header=True)
                spooled = await second
                if spooled is None:
                    return rows + await self._copy_part(halves.second, args, header=False)
                await split.send_spool(spool, self._put)
                return rows + spooled
            finally:
                stopped = await split.stop(second, CANCEL_WAIT_SECONDS)
                spool.close()
                if not stopped:
                    helper.terminate()
                await db.checkin(self._pool, helper, None, CANCEL_WAIT_SECONDS)

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The CSV bytes; closing this iterator early stops the COPY and frees the connection."""
        try:
            while True:
                if self._queue.empty() and self._task.done():
                    break
                chunk = await self._queue.get()
                if chunk is None:
                    break
                # when the client is slower than COPY, send what has piled up in one write
                pieces, finished = [chunk], False
                while not self._queue.empty():
                    more = self._queue.get_nowait()
                    if more is None:
                        finished = True
                        break
                    pieces.append(more)
                yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
                if finished:
                    break
            await self._task  # re-raises a COPY failure
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the COPY if it still runs, give the connection back, record the outcome.

        Idempotent, and finishes even when the caller is cancelled (the work runs in a task
        of its own that later callers wait for).
        """
        if self._closing is None:
            self._closing = asyncio.create_task(self._close())
        with anyio.CancelScope(shield=True):
            await asyncio.shield(self._closing)

    async def _close(self) -> None:
        try:
            await self._release()
            await self._record()
        finally:
            self._active.discard(self)

    async def _release(self) -> None:
        if not self._task.done():
            self._task.cancel()
        failure: BaseException | None = None
        try:
            async with asyncio.timeout(CANCEL_WAIT_SECONDS):
                await asyncio.gather(self._task, return_exceptions=True)
        except TimeoutError:
            # a connection that could not be brought back to idle must not be reused
            self._conn.terminate()
        if self._task.done() and not self._task.cancelled():
            failure = self._task.exception()
        await db.checkin(self._pool, self._conn, failure, CANCEL_WAIT_SECONDS)

    async def _record(self) -> None:
        # Recorded on a connection of its own: the export's may have been terminated, and
        # the entry for an aborted export must not be lost with it.
        try:
            async with asyncio.timeout(CANCEL_WAIT_SECONDS * 2):
                async with db.acquire(self._audit_pool, CANCEL_WAIT_SECONDS) as fresh:
                    await self._on_finish(fresh, self.outcome)
        except (TimeoutError, db.DatabaseUnavailable, asyncpg.PostgresError) as exc:
            log.warning("export audit entry not written: %s", exc)


class ExportResponse(StreamingResponse):
    """Streams an Export; whatever ends the response (even a cancelled task), the export
    is closed before the response returns, instead of when its iterator is collected."""

    def __init__(
        self,
        export: Export,
        chunks: AsyncGenerator[bytes, None],
        first: bytes,
        headers: Mapping[str, str],
    ) -> None:
        self._export = export
        self._chunks = chunks
        super().__init__(self._body(first), media_type="text/csv; charset=utf-8", headers=headers)

    async def _body(self, first: bytes) -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in self._chunks:
            yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._chunks.aclose()
                await self._export.close()


async def start_export(
    pool: asyncpg.Pool,
    wait_seconds: float,
    query: str,
    args: list[object],
    on_finish: OnFinish,
    active: set[Export],
    headers: Mapping[str, str],
    *,
    audit_pool: asyncpg.Pool | None = None,
    delimiter: str = ",",
    transform: Callable[[bytes], bytes] | None = None,
    prefix: bytes = b"",
    halves: split.SplitPlan | None = None,
    conn: asyncpg.Connection | None = None,
) -> ExportResponse:
    """Start the COPY before the response starts, so an exhausted pool or an unreachable
    database still answers 503 and a failing query its error. `conn`: a connection of
    `pool` to run it on (given back to `pool` at the end), else one is acquired."""
    if conn is None:
        conn = await db.checkout(pool, wait_seconds)
    export = Export(
        pool, conn, query, args, on_finish, active, audit_pool, delimiter, transform, halves
    )
    chunks = export.chunks()
    try:
        first = prefix + await anext(chunks, b"")
    except Exception as exc:
        await chunks.aclose()
        if db.is_connection_failure(exc):
            raise db.unavailable(exc) from exc
        raise
    except BaseException:
        await chunks.aclose()
        raise
    return ExportResponse(export, chunks, first, headers)


async def abort_all(active: set[Export], wait_seconds: float) -> None:
    """Stop every export still running (at shutdown), each recorded as aborted."""
    if not active:
        return
    closing = [asyncio.ensure_future(export.close()) for export in list(active)]
    _done, pending = await asyncio.wait(closing, timeout=wait_seconds)
    if pending:
        log.warning("%d export(s) did not stop within %.0f s", len(pending), wait_seconds)
