"""An export of a big table in key order, produced in two halves at once.

PostgreSQL writes CSV on one core per COPY; the rest of an export (this process, the client)
is light. An export sorted by the table's single integer key is cut at the key's midpoint:
the first half streams to the client as usual while a second pooled connection, in the same
snapshot (`pg_export_snapshot` / `SET TRANSACTION SNAPSHOT`, REPEATABLE READ on both), writes
the second half to an anonymous temporary file, which is sent once the first half is out.
The bytes are those of the serial export: same SELECT, same order, one header.

Only when the table is big, the pool has a spare connection (never waited for), and
connections are not shared through a transaction pooler (snapshots cannot be handed
between its server connections). The temporary file is bounded: past SPOOL_MAX_BYTES the
rest of the second half is read and dropped, and the half is produced again on the first
connection after the first half, in the same snapshot, as the serial export would have.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import BinaryIO

import asyncpg

from admin.csvio.spool import read_blocks

SPOOL_MAX_BYTES = 4 << 30
SEND_BLOCK = 128 << 10


@dataclass(frozen=True)
class SplitPlan:
    """How an export may be cut in two: `query(condition)` is its SELECT narrowed by one
    more condition on `key` (quoted), the table's single integer key."""

    table: str  # the table, qualified and quoted
    key: str
    descending: bool
    query: Callable[[str], str]
    min_bytes: int  # tables smaller than this are exported serially


@dataclass(frozen=True)
class Halves:
    first: str
    second: str


def narrowed(where: str, condition: str) -> str:
    """`where` (a WHERE clause or "") with `condition` added."""
    if not where:
        return f"WHERE {condition}"
    return f"WHERE ({where.removeprefix('WHERE ')}) AND {condition}"


async def plan_halves(conn: asyncpg.Connection, plan: SplitPlan) -> tuple[Halves, str] | None:
    """In `conn`'s REPEATABLE READ transaction: the two halves' queries and the snapshot to
    share, or None when the table is too small or empty."""
    size = await conn.fetchval("SELECT pg_relation_size(to_regclass($1))", plan.table)
    if int(size or 0) < plan.min_bytes:
        return None
    row = await conn.fetchrow(
        f"SELECT pg_export_snapshot() AS snapshot, (SELECT min({plan.key}) FROM {plan.table}) "
        f"AS low, (SELECT max({plan.key}) FROM {plan.table}) AS high"
    )
    assert row is not None
    low, high = row["low"], row["high"]
    if low is None or low == high:
        return None
    middle = int(low) + (int(high) - int(low)) // 2
    lower, upper = f"{plan.key} <= {middle}", f"{plan.key} > {middle}"
    first, second = (upper, lower) if plan.descending else (lower, upper)
    return Halves(plan.query(first), plan.query(second)), str(row["snapshot"])


async def spool_half(
    conn: asyncpg.Connection,
    snapshot: str,
    query: str,
    args: list[object],
    delimiter: str,
    spool: BinaryIO,
) -> int | None:
    """COPY `query` in `snapshot` into `spool`: its rows, or None when it could not (the
    caller then produces that half itself). Past SPOOL_MAX_BYTES the rest of the half is
    read and dropped (the COPY ends cleanly) and None is returned."""
    written = 0

    async def output(chunk: bytes | bytearray | memoryview) -> None:
        nonlocal written
        written += len(chunk)
        if written <= SPOOL_MAX_BYTES:
            spool.write(chunk)

    try:
        async with conn.transaction(isolation="repeatable_read"):
            await conn.execute("SET TRANSACTION SNAPSHOT '" + snapshot.replace("'", "''") + "'")
            await conn.execute("SET LOCAL statement_timeout = 0")
            status = await conn.copy_from_query(
                query, *args, output=output, format="csv", header=False, delimiter=delimiter
            )
    except asyncpg.PostgresError:
        return None
    if written > SPOOL_MAX_BYTES:
        return None
    spool.flush()
    spool.seek(0)
    return int(status.split()[-1])


async def send_spool(spool: BinaryIO, put: Callable[[bytes], Awaitable[None]]) -> None:
    async for block in read_blocks(spool, SEND_BLOCK):
        await put(block)


def new_spool() -> BinaryIO:
    return tempfile.TemporaryFile(prefix="csv-export-")


async def stop(task: asyncio.Task[int | None], wait_seconds: float) -> bool:
    """Cancel the second half if it still runs; false when it did not stop in time (its
    connection must then be terminated, not reused)."""
    if not task.done():
        task.cancel()
    try:
        async with asyncio.timeout(wait_seconds):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    except TimeoutError:
        return False
    return True
