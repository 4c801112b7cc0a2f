"""CSV import: COPY the received file into a staging table, check it in SQL, then write.

(A plain insert that COPY alone can write goes straight into the table first: csvio.direct.
What follows is the path of every other file, and of any file the direct path refused.)

All of it runs in one transaction: the staging table is TEMP ... ON COMMIT DROP, so a
failed or abandoned import leaves nothing behind, and a rejected file writes zero rows.
The happy path pays for one pass over the staging table for the rules the table does not
enforce itself (ids, amounts, dates); the typed INSERT runs in a savepoint, and only when
anything fails are the detailed checks run to name every bad cell by line and column.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import BinaryIO

import asyncpg

from admin import db
from admin.csvio import error_files
from admin.csvio.checks import BROKEN, LINE, ORD, STAGE, Checks, typed
from admin.csvio.direct import DirectPlan, Outcome, copy_direct, plan
from admin.csvio.formats import FileFormat
from admin.csvio.incoming import STALL_SECONDS, Incoming
from admin.csvio.mapping import ColumnMapping
from admin.csvio.options import ImportOptions, Mode
from admin.csvio.problems import MAX_ERRORS, ImportRejected, Problem, shown
from admin.csvio.scan import scan
from admin.csvio.screens import Screen
from admin.csvio.tables import CsvTable
from admin.csvio.upload import CsvHeader
from admin.sql import quote_ident

__all__ = [
    "DryRun",
    "ImportRejected",
    "ImportResult",
    "Mode",
    "Problem",
    "import_csv",
]

# giving a spare connection back waits no longer than this (a busy pool replaces it)
RELEASE_SECONDS = 5.0
_COPY_CONTEXT = re.compile(r'COPY \S+, line (\d+)(?:, column (\w+))?(?:: "(.*)")?\Z', re.DOTALL)


class _RuleBroken(Exception):
    """A staged row breaks a rule the table would not have refused."""


@dataclass(frozen=True)
class ImportResult:
    rows: int
    inserted: int
    updated: int
    seconds: float
    direct: bool = False  # copied straight into the table (csvio.direct), not staged
    blank_lines: int = 0  # skipped (csvio.scan)

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated


def copy_problem(exc: asyncpg.PostgresError, mapping: ColumnMapping) -> Problem:
    """A malformed-CSV error from COPY (field count, encoding, quoting) as a Problem."""
    message = str(exc)
    match = _COPY_CONTEXT.search(getattr(exc, "context", "") or "")
    if match is None:
        return Problem(shown(message) or "")
    line, column, value = int(match.group(1)), match.group(2), match.group(3)
    if message.startswith("extra data after last expected column"):
        message = "has more fields than the header"
    elif message.startswith("missing data for column"):
        message = "has fewer fields than the header"
        column = message_column(str(exc)) or column
    elif isinstance(exc, asyncpg.CharacterNotInRepertoireError):
        message = f"is not valid UTF-8 ({message})"
    elif message.startswith("unterminated CSV quoted field"):
        message = "the file ends inside a quoted field: a quote opened earlier is never closed"
    if column is not None:
        stage = {f.stage: f for f in mapping.fields}.get(column)
        if stage is not None:
            column = stage.target.name if stage.target else stage.header
    return Problem(shown(message) or "", line=line, column=column, value=shown(value))


def message_column(message: str) -> str | None:
    match = re.search(r'column "([^"]+)"', message)
    return match.group(1) if match else None


Progress = Callable[[str, int], Awaitable[None]]


async def _no_progress(phase: str, rows: int) -> None:
    return None


class DryRun(Exception):
    """Unwinds a validated import's transaction: nothing it wrote is kept."""

    def __init__(self, result: ImportResult) -> None:
        super().__init__("dry run")
        self.result = result


class Importer:
    """One import of `spec` on `conn`, inside the caller's transaction."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        spec: CsvTable,
        header: CsvHeader,
        mapping: ColumnMapping,
        options: ImportOptions,
        file_format: FileFormat,
        owner: int = 0,
    ):
        self.owner = owner  # the staff member who may download the error file
        self.conn = conn
        self.spec = spec
        self.header = header
        self.mapping = mapping
        self.mode = options.mode
        self.format = file_format
        self.present = mapping.columns
        self.checks = Checks(conn, spec, mapping, options, header.lines)
        self.rows = 0
        self.broken = 0  # malformed records (the structural problems)
        self.blank_lines = 0  # skipped by the second reading (csvio.scan)
        self.first_broken: list[Problem] = []

    async def _create_stage(self, *, with_lines: bool) -> None:
        line = f", {LINE} bigint" if with_lines else ""
        columns = "".join(f", {f.stage} text" for f in self.mapping.fields)
        await self.conn.execute(
            f"CREATE TEMP TABLE {STAGE} ({ORD} bigint GENERATED ALWAYS AS IDENTITY{line}"
            f"{columns}) ON COMMIT DROP"
        )

    async def stage(self, file: BinaryIO) -> None:
        """COPY the spooled file (its header record first) into the staging table.

        When COPY finds a malformed record, the file is read again to sort every record into
        well-formed (staged, with its line number) and malformed (kept for the report).
        """
        fields = [f.stage for f in self.mapping.fields]
        await self._create_stage(with_lines=False)
        try:
            async with self.conn.transaction():
                status = await self.conn.copy_to_table(
                    STAGE,
                    source=file,
                    columns=fields,
                    format="csv",
                    header=True,
                    delimiter=self.format.delimiter,
                    encoding=self.format.encoding,
                )
        except (asyncpg.DataError, asyncpg.PostgresSyntaxError) as exc:
            await self._restage(file, copy_problem(exc, self.mapping))
            return
        self.rows = int(status.split()[-1])

    async def _restage(self, file: BinaryIO, first: Problem) -> None:
        skip = len(self.header.raw)  # the spooled file starts with the header, no BOM
        found = await asyncio.to_thread(
            scan,
            file,
            skip,
            len(self.mapping.fields),
            encoding=self.format.encoding,
            delimiter=self.format.delimiter,
            header_lines=self.header.lines,
        )
        try:
            await self.conn.execute(f"DROP TABLE {STAGE}")
            await self._create_stage(with_lines=True)
            fields = [f.stage for f in self.mapping.fields]
            status = await self.conn.copy_to_table(
                STAGE, source=found.clean, columns=[LINE, *fields], format="csv"
            )
            self.rows = int(status.split()[-1]) + found.broken_count
            self.checks.with_lines = True
            await self.conn.execute(
                f"CREATE TEMP TABLE {BROKEN} (line bigint, problem text"
                + "".join(f", {f} text" for f in fields)
                + ") ON COMMIT DROP"
            )
            await self.conn.copy_to_table(BROKEN, source=found.broken, format="csv")
        finally:
            found.close()
        self.broken = found.broken_count
        self.blank_lines = found.blank_lines
        if not self.broken and not self.blank_lines:
            # COPY's own words where the second reading found nothing (it should not happen)
            self.first_broken, self.broken = [first], 1
        else:
            self.first_broken = found.first

    def _value_exprs(self) -> tuple[list[str], list[str]]:
        """(target columns, SELECT expressions) for the INSERT from the staging table."""
        targets: list[str] = []
        values: list[str] = []
        for field, column in self.present:
            expr = typed(field)
            if self.mode is Mode.UPSERT and column.name in self.spec.key:
                pass  # the match key has no default: an empty one fails as required
            elif column.default_sql is not None:
                expr = f"COALESCE({expr}, {column.default_sql})"
            targets.append(quote_ident(column.name))
            values.append(expr)
        return targets, values

    def _write_sql(self) -> str:
        table = self.spec.qualified
        targets, values = self._value_exprs()
        # an id the file gives for a GENERATED ALWAYS key is taken as given (empty: generated)
        overriding = any(c.always_generated for _, c in self.present)
        insert = (
            f"INSERT INTO {table} AS t ({', '.join(targets)}) "
            + ("OVERRIDING SYSTEM VALUE " if overriding else "")
            + f"SELECT {', '.join(values)} FROM {self.checks.source}"
        )
        if self.mode is Mode.INSERT:
            return insert
        updated = [
            quote_ident(c.name)
            for _, c in self.present
            if not c.insert_only and c.name not in self.spec.key
        ]
        key = ", ".join(quote_ident(k) for k in self.spec.key)
        if not updated:
            action = "DO NOTHING"
        else:
            assignments = ", ".join(f"{c} = excluded.{c}" for c in updated)
            current = ", ".join(f"t.{c}" for c in updated)
            incoming = ", ".join(f"excluded.{c}" for c in updated)
            action = (
                f"DO UPDATE SET {assignments} WHERE ROW({current}) IS DISTINCT FROM ROW({incoming})"
            )
        return (
            f"WITH written AS ({insert} ON CONFLICT ({key}) {action} "
            "RETURNING (t.xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted) AS inserted, "
            "count(*) FILTER (WHERE NOT inserted) AS updated FROM written"
        )

    async def _versions_moved(self) -> bool:
        """Lock the rows the file updates; true when one changed since the file was made.

        Held until commit, so no edit can slip in between this check and the write (an
        editor's own version check then sees the import's change).
        """
        value = self.checks.version_value()
        if value is None:
            return False
        return bool(
            await self.conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM (SELECT {self.spec.version_sql} AS now, "
                f"{value} AS was "
                f"FROM {self.checks.version_join()} JOIN {STAGE} s ON s.{ORD} = x.{ORD} "
                "FOR UPDATE OF t) v WHERE was IS NOT NULL AND was IS DISTINCT FROM now)"
            )
        )

    async def write(
        self, report: Progress = _no_progress, refused: asyncpg.PostgresError | None = None
    ) -> tuple[int, int, int]:
        """(rows, inserted, updated); ImportRejected naming every bad cell when it fails.

        Reports "checked" once the rules pass, "written" after the rows are in the table,
        and "indexes" once deferred keys are checked and sequences moved past the new ids.
        `refused`: the direct path's COPY met an error this insert would meet too, so the
        problems are looked for at once.
        """
        rows = self.rows
        try:
            if refused is not None:
                raise refused
            async with self.conn.transaction():
                if self.broken or await self.checks.any_broken_outside_the_table():
                    raise _RuleBroken
                if await self._versions_moved():
                    raise _RuleBroken
                await report("checked", rows)
                if self.mode is Mode.INSERT:
                    status = await self.conn.execute(self._write_sql())
                    inserted, updated = int(status.split()[-1]), 0
                else:
                    record = await self.conn.fetchrow(self._write_sql())
                    assert record is not None
                    inserted, updated = record["inserted"], record["updated"]
                await report("written", inserted + updated)
                # deferrable unique and foreign keys would otherwise be checked at commit,
                # where a failure could no longer name the rows
                await self.conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        except (asyncpg.PostgresError, _RuleBroken) as exc:
            if isinstance(exc, asyncpg.QueryCanceledError):
                raise
            problems, total = await self.checks.find_problems(MAX_ERRORS)
            if self.broken:
                merged = sorted([*self.first_broken, *problems], key=lambda p: p.line or 0)
                problems, total = merged[:MAX_ERRORS], total + self.broken
            if not problems:
                detail = f" ({exc.detail})" if getattr(exc, "detail", None) else ""
                problems = [Problem(shown(f"the database refused the rows: {exc}{detail}") or "")]
                total = 1
            errors = await self._error_file()
            raise ImportRejected(problems, total=total, error_file=errors) from None
        await self._advance_sequences()
        await report("indexes", inserted + updated)
        return rows, inserted, updated

    async def write_direct(
        self,
        direct: DirectPlan,
        file: BinaryIO,
        report: Progress = _no_progress,
        screened: Screen | None = None,
        arriving: AsyncIterator[bytes] | None = None,
        beside: asyncpg.Connection | None = None,
    ) -> Outcome:
        """Copy the file straight into the table; when nothing was written, the file is
        staged next."""
        outcome = await copy_direct(
            self.conn, self.spec, direct, file, self.format, screened, arriving, beside
        )
        if outcome.written is None:
            return outcome
        self.rows = outcome.written
        await report("checked", outcome.written)
        await report("written", outcome.written)
        await self._advance_sequences()
        await report("indexes", outcome.written)
        return outcome

    async def _advance_sequences(self) -> None:
        for _, column in self.present:
            if column.default_sql and "nextval(" in column.default_sql:
                await self._advance_sequence(column.name)

    async def _error_file(self) -> str | None:
        """All problems as a CSV (the offending rows, a column saying what is wrong), kept
        for download; its token, or None when it could not be written."""
        header = [f.header for f in self.mapping.fields]
        sql = self.checks.error_rows_sql(broken=BROKEN if self.broken else None)
        return await error_files.write(self.conn, sql, header, self.owner)

    async def _advance_sequence(self, name: str) -> None:
        """Move the column's sequence up to its largest value, never past it and never back.

        Imported ids are at most MAX_IMPORTED_ID, so the panel and the shop keep room for
        their own inserts after any accepted import.
        """
        await self.conn.execute(
            "SELECT setval(seq, top) FROM (SELECT pg_get_serial_sequence($1, $2)::regclass"
            f" AS seq, (SELECT max({quote_ident(name)}) FROM {self.spec.qualified})::bigint"
            " AS top) x WHERE seq IS NOT NULL AND top > COALESCE(pg_sequence_last_value(seq), 0)",
            self.spec.qualified,
            name,
        )


@contextlib.asynccontextmanager
async def _followed(arriving: Incoming | None) -> AsyncIterator[AsyncIterator[bytes] | None]:
    """The file's bytes as they arrive (None: the file is whole), closed as soon as the COPY
    is done with them, so that they set the upload's pace no longer."""
    if arriving is None:
        yield None
        return
    async with contextlib.aclosing(arriving.follow()) as blocks:
        yield blocks


@contextlib.asynccontextmanager
async def _beside(
    pool: asyncpg.Pool | None, direct: DirectPlan
) -> AsyncIterator[asyncpg.Connection | None]:
    """A spare connection to check the direct import's value rules on (csvio.rule_check), when
    they are costly and the pool has one to give at once; None otherwise."""
    conn = await db.spare(pool) if pool is not None and direct.costly_rules else None
    try:
        yield conn
    finally:
        if conn is not None:
            await db.checkin(pool, conn, None, RELEASE_SECONDS)


async def import_csv(
    conn: asyncpg.Connection,
    spec: CsvTable,
    header: CsvHeader,
    mapping: ColumnMapping,
    options: ImportOptions,
    file: BinaryIO,
    on_success: Callable[[ImportResult], Awaitable[None]],
    *,
    seconds_left: float,
    file_format: FileFormat,
    progress: Progress | None = None,
    owner: int = 0,
    screened: Screen | None = None,
    arriving: Incoming | None = None,
    pool: asyncpg.Pool | None = None,
) -> ImportResult:
    """Stage, check and write the file in one transaction; ImportRejected writes nothing.

    `on_success` runs inside the transaction (the audit entry commits with the rows). No
    statement runs longer than `seconds_left` (the rest of the import's time limit).
    `screened`: the direct path's screens, fed the file as it was received. `arriving`:
    the file is still being received; a direct import copies it as it comes, anything
    else waits for the rest (UploadStalled, with everything rolled back, when it stops
    coming: see csvio.incoming). `pool`: where a direct import may find a spare connection
    to check its value rules on while it copies (csvio.rule_check).
    """
    started = time.perf_counter()
    importer = Importer(conn, spec, header, mapping, options, file_format, owner)
    report = progress or _no_progress
    async with conn.transaction():
        # an import into a table another import is writing waits for it to end
        await db.wait_for_locks(conn)
        # a million-row file takes longer than the pool's default statement timeout
        await conn.execute(
            "SELECT set_config('statement_timeout', $1, true)",
            str(max(1, math.ceil(seconds_left * 1000))),
        )
        if options.date_order is not None:
            await conn.execute(
                "SELECT set_config('DateStyle', $1, true)", options.date_order.datestyle
            )
        direct = plan(spec, mapping, options)
        outcome = Outcome(None)
        if direct is not None:
            async with _followed(arriving) as blocks, _beside(pool, direct) as beside:
                outcome = await importer.write_direct(
                    direct, file, report, screened, blocks, beside
                )
        if outcome.written is not None:
            rows, inserted, updated = outcome.written, outcome.written, 0
        else:
            if arriving is not None:
                file = await arriving.whole(STALL_SECONDS)
            await importer.stage(file)
            rows, inserted, updated = await importer.write(report, outcome.refused)
        result = ImportResult(
            rows,
            inserted,
            updated,
            time.perf_counter() - started,
            direct=outcome.written is not None,
            blank_lines=importer.blank_lines,
        )
        if options.dry_run:
            raise DryRun(result)
        await on_success(result)
    return result
