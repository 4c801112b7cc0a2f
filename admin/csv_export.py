"""CSV export: COPY (SELECT ...) TO STDOUT streamed through a bounded queue.

The COPY runs in its own task and blocks on the queue when the client reads slowly, so
memory stays at a few chunks whatever the table size. When the response ends early (the
client went away), the task is cancelled, which cancels the COPY on the server, and the
connection goes back to the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import anyio
import asyncpg

from admin import db
from admin.csv_tables import CsvTable
from admin.listing import quote_ident

QUEUE_CHUNKS = 16
# how long COPY may wait for a stalled client before the export is abandoned
PUT_TIMEOUT_SECONDS = 60.0
CANCEL_WAIT_SECONDS = 5.0
# =, +, -, @, tab, CR: a spreadsheet runs a cell starting with one of these as a formula
FORMULA_STARTS = ", ".join(str(ord(c)) for c in "=+-@\t\r")


def _select_list(spec: CsvTable, raw: bool) -> str:
    """The exported columns; text cells that a spreadsheet would run as a formula get a '."""
    parts = []
    for column in spec.columns:
        name = quote_ident(column.name)
        if column.neutralise and not raw:
            # OWASP CSV injection; ascii() of the first character is cheaper than a regex
            parts.append(
                f"CASE WHEN ascii({name}) IN ({FORMULA_STARTS}) THEN '''' || {name} "
                f"ELSE {name} END AS {name}"
            )
        else:
            parts.append(name)
    return ", ".join(parts)


def export_query(spec: CsvTable, where: str, order_by: str, *, raw: bool) -> str:
    """The SELECT that COPY (...) TO STDOUT (FORMAT csv, HEADER) runs for `spec`'s table."""
    return f"SELECT {_select_list(spec, raw)} FROM {quote_ident(spec.table)} {where} {order_by}"


async def acquire_for_stream(pool: asyncpg.Pool, wait_seconds: float) -> asyncpg.Connection:
    """A connection that the export releases itself; 503 errors like db.connection()."""
    try:
        return await pool.acquire(timeout=wait_seconds)
    except TimeoutError:
        raise db.PoolExhausted("all database connections are busy") from None
    except db.UNAVAILABLE_ERRORS as exc:
        raise db.DatabaseUnavailable(f"database unreachable: {exc}") from exc


@dataclass
class ExportOutcome:
    rows: int | None = None
    completed: bool = False


class Export:
    """A running COPY TO on a pooled connection, read chunk by chunk."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        conn: asyncpg.Connection,
        query: str,
        args: list[object],
        on_finish: Callable[[asyncpg.Connection, ExportOutcome], Awaitable[None]],
    ) -> None:
        self._pool = pool
        self._conn: asyncpg.Connection | None = conn
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUE_CHUNKS)
        self._on_finish = on_finish
        self.outcome = ExportOutcome()
        self._task = asyncio.create_task(self._copy(conn, query, args))

    async def _put(self, chunk: bytes | bytearray | memoryview) -> None:
        # asyncpg reuses its buffer: the chunk must be copied before the next one arrives
        data = bytes(chunk)
        if not self._queue.full():
            self._queue.put_nowait(data)
        else:
            await asyncio.wait_for(self._queue.put(data), PUT_TIMEOUT_SECONDS)

    async def _copy(self, conn: asyncpg.Connection, query: str, args: list[object]) -> None:
        try:
            async with conn.transaction():
                await conn.execute("SET LOCAL statement_timeout = 0")
                status = await conn.copy_from_query(
                    query, *args, output=self._put, format="csv", header=True
                )
            self.outcome.rows = int(status.split()[-1])
            self.outcome.completed = True
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)

    async def chunks(self) -> AsyncIterator[bytes]:
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
            with anyio.CancelScope(shield=True):
                await self.close()

    async def close(self) -> None:
        """Stop the COPY if it still runs, give the connection back, record the outcome."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if not self._task.done():
            self._task.cancel()
        try:
            async with asyncio.timeout(CANCEL_WAIT_SECONDS):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        except TimeoutError:
            # a connection that could not be brought back to idle must not be reused
            conn.terminate()
        finally:
            await self._pool.release(conn)
        # Recorded on a connection of its own: right after a cancelled COPY, the export's
        # connection may still be finishing the cancellation (or be gone), and the entry
        # for an aborted export must not be lost with it.
        async with self._pool.acquire(timeout=CANCEL_WAIT_SECONDS) as fresh:
            await self._on_finish(fresh, self.outcome)
