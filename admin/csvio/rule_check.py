"""A direct import's costly value rules, checked beside its COPY on a second connection.

COPY's WHERE (csvio.direct.refusing_where) makes the backend that writes the rows evaluate
the rules as well: for a users file, the email pattern alone costs that backend 0.55 s per
million rows, about 2% of the import, where `psql \\copy` pays nothing. When a rule is that
costly (csvio.tables.Check.costly) and the pool has a spare connection, the rules run there
instead, on the other core: a second COPY reads the same bytes, no further than the
import's COPY has read them, into a temporary table with no index, typed only where a rule
reads a column, whose WHERE raises for a broken row and is false for every other (nothing
is stored). The import's rows are kept only once this check has read the whole file and
found nothing; when it finds anything, or fails in any way, the import's COPY is abandoned
and the file staged, as a rule raised in its WHERE would. (Cheap rules stay in the WHERE:
reading the file a second time costs the machine more than they do.)
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import asyncpg

from admin.csvio.formats import FileFormat
from admin.sql import quote_ident

READ_BLOCK = 256 << 10
# the import transaction's settings that the typed values depend on, and its time limit
COPIED_SETTINGS = ("DateStyle", "IntervalStyle", "TimeZone", "search_path", "statement_timeout")


class RulesBroken(Exception):
    """The check found a broken rule, or could not tell: the file is staged."""


class CopyAbandoned(Exception):
    """The import's COPY ended without reading the whole file: the check stops too."""


class ReadMark:
    """How far the import's COPY has read the file; the check reads no further."""

    def __init__(self) -> None:
        self.offset = 0
        self.ended = False
        self.abandoned = False
        self.broken = False  # the check ended without passing
        self._moved = asyncio.Event()

    async def lead(self, blocks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The import's blocks, marked as they are read; RulesBroken ends the import's COPY
        as soon as the check has failed."""
        async for block in blocks:
            if self.broken:
                raise RulesBroken
            self.offset += len(block)
            self._moved.set()
            yield block
        self.ended = True
        self._moved.set()

    def ended_check(self, check: asyncio.Task[None]) -> None:
        if check.cancelled() or check.exception() is not None:
            self.broken = True

    def abandon(self) -> None:
        self.abandoned = True
        self._moved.set()

    async def trail(self, descriptor: int) -> AsyncIterator[bytes]:
        """The same bytes read again from the file, up to the mark."""
        offset = 0
        while True:
            if self.abandoned:
                raise CopyAbandoned
            if offset < self.offset:
                # from the page cache, on the event loop (see csvio.incoming.follow)
                block = os.pread(descriptor, min(READ_BLOCK, self.offset - offset), offset)
                if not block:
                    raise CopyAbandoned  # the file is shorter than what the COPY read
                offset += len(block)
                yield block
            elif self.ended:
                return
            else:
                self._moved.clear()
                await self._moved.wait()


async def settings_of(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    row = await conn.fetchrow(
        "SELECT " + ", ".join(f"current_setting('{name}')" for name in COPIED_SETTINGS)
    )
    assert row is not None
    return list(zip(COPIED_SETTINGS, row, strict=True))


async def check_rules(
    conn: asyncpg.Connection,
    columns: dict[str, str],
    where: str,
    file_format: FileFormat,
    blocks: AsyncIterator[bytes],
    settings: list[tuple[str, str]],
) -> None:
    """Read the file with COPY's options into nothing: `columns` (name: type) in the file's
    order, `where` false for every row and raising for a broken one (see module). RulesBroken
    when a row breaks a rule or the check fails; its transaction is always rolled back."""
    table = ", ".join(f"{quote_ident(name)} {type_sql}" for name, type_sql in columns.items())
    transaction = conn.transaction()
    try:
        await transaction.start()
        for name, value in settings:
            await conn.execute("SELECT set_config($1, $2, true)", name, value)
        await conn.execute(f"CREATE TEMP TABLE csv_rule_check ({table}) ON COMMIT DROP")
        await conn.copy_to_table(
            "csv_rule_check",
            schema_name="pg_temp",
            source=blocks,
            columns=list(columns),
            format="csv",
            header=True,
            delimiter=file_format.delimiter,
            encoding=file_format.encoding,
            force_null=list(columns),
            where=where,
        )
    except Exception as exc:
        raise RulesBroken from exc
    finally:
        try:
            await transaction.rollback()
        except Exception:
            conn.terminate()  # in a state nobody else should inherit; the pool replaces it
