"""CSV import: COPY the received file into a staging table, check it in SQL, then write.

All of it runs in one transaction: the staging table is TEMP ... ON COMMIT DROP, so a
failed or abandoned import leaves nothing behind, and a rejected file writes zero rows.
The happy path pays for one pass over the staging table for the rules the table does not
enforce itself (ids, amounts, dates); the typed INSERT runs in a savepoint, and only when
anything fails are the detailed checks run to name every bad cell by line and column.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import BinaryIO

import asyncpg

from admin.csv_checks import STAGE, Checks, typed
from admin.csv_options import ImportOptions, Mode
from admin.csv_problems import ImportRejected, Problem, ProblemList, shown
from admin.csv_tables import CsvTable
from admin.csv_upload import CsvHeader
from admin.sql import quote_ident

__all__ = ["ImportRejected", "ImportResult", "Mode", "Problem", "header_names", "import_csv"]

_COPY_CONTEXT = re.compile(r'COPY \S+, line (\d+)(?:, column (\w+))?(?:: "(.*)")?\Z', re.DOTALL)
_NAME_SHOWN = 60


class _RuleBroken(Exception):
    """A staged row breaks a rule the table would not have refused."""


@dataclass(frozen=True)
class ImportResult:
    rows: int
    inserted: int
    updated: int
    seconds: float

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated


def header_names(text: str) -> list[str]:
    """The header record's names, trimmed and lower-cased."""
    try:
        row = next(csv.reader(io.StringIO(text, newline="")), [])
    except csv.Error as exc:
        raise ImportRejected([Problem(f"the header row is not valid CSV: {exc}", line=1)]) from None
    return [name.strip().lower() for name in row]


def check_header(spec: CsvTable, header: CsvHeader, mode: Mode) -> None:
    """Every column known, none twice, the required ones present; else ImportRejected."""
    found = ProblemList()
    seen: set[str] = set()
    for position, name in enumerate(header.names, start=1):
        label = shown(name, _NAME_SHOWN)
        if not name:
            found.add(Problem(f"header column {position} has no name", line=1))
        elif name not in spec.names:
            found.add(
                Problem(
                    f"unknown column {label!r}; {spec.table} accepts: {', '.join(spec.names)}",
                    line=1,
                    column=label,
                )
            )
        elif name in seen:
            found.add(Problem(f"column {label!r} appears twice", line=1, column=label))
        seen.add(name)
    required = list(spec.required)
    if mode is Mode.UPSERT and spec.key not in required:
        required.append(spec.key)
    for name in required:
        if name not in seen:
            found.add(Problem(f"missing required column {name!r}", line=1, column=name))
    found.raise_if_any()


def copy_problem(exc: asyncpg.PostgresError) -> Problem:
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
    return Problem(shown(message) or "", line=line, column=column, value=shown(value))


def message_column(message: str) -> str | None:
    match = re.search(r'column "([^"]+)"', message)
    return match.group(1) if match else None


class Importer:
    """One import of `spec` on `conn`, inside the caller's transaction."""

    def __init__(
        self, conn: asyncpg.Connection, spec: CsvTable, header: CsvHeader, options: ImportOptions
    ):
        self.conn = conn
        self.spec = spec
        self.header = header
        self.mode = options.mode
        self.present = [spec.column(name) for name in header.names]
        self.checks = Checks(conn, spec, self.present, options, header.lines)
        self.rows = 0

    def _has(self, name: str) -> bool:
        return any(c.name == name for c in self.present)

    async def stage(self, file: BinaryIO) -> None:
        """COPY the spooled file (its header record first) into the staging table."""
        columns = ", ".join(f"{quote_ident(c.name)} text" for c in self.present)
        await self.conn.execute(
            f"CREATE TEMP TABLE {STAGE} (ord bigint GENERATED ALWAYS AS IDENTITY, {columns})"
            " ON COMMIT DROP"
        )
        try:
            status = await self.conn.copy_to_table(
                STAGE,
                source=file,
                columns=[c.name for c in self.present],
                format="csv",
                header=True,
            )
        except (asyncpg.DataError, asyncpg.PostgresSyntaxError) as exc:
            raise ImportRejected([copy_problem(exc)]) from None
        self.rows = int(status.split()[-1])

    def _value_exprs(self) -> tuple[list[str], list[str]]:
        """(target columns, SELECT expressions) for the INSERT from the staging table."""
        targets: list[str] = []
        values: list[str] = []
        for column in self.present:
            expr = typed(column)
            if self.mode is Mode.UPSERT and column.name == self.spec.key:
                pass  # the match key has no default: an empty one fails as required
            elif column.name == "id":
                sequence = f"pg_get_serial_sequence('{self.spec.table}', 'id')"
                expr = f"COALESCE({expr}, nextval({sequence}))"
            elif column.default_sql is not None:
                expr = f"COALESCE({expr}, {column.default_sql})"
            targets.append(quote_ident(column.name))
            values.append(expr)
        return targets, values

    def _write_sql(self) -> str:
        table = quote_ident(self.spec.table)
        targets, values = self._value_exprs()
        insert = (
            f"INSERT INTO {table} AS t ({', '.join(targets)}) "
            f"SELECT {', '.join(values)} FROM {STAGE} s"
        )
        if self.mode is Mode.INSERT:
            return insert
        updated = [
            quote_ident(c.name)
            for c in self.present
            if not c.insert_only and c.name != self.spec.key
        ]
        key = quote_ident(self.spec.key)
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

    async def write(self) -> tuple[int, int, int]:
        """(rows, inserted, updated); ImportRejected naming every bad cell when it fails."""
        rows = self.rows
        try:
            async with self.conn.transaction():
                if await self.checks.any_broken_outside_the_table():
                    raise _RuleBroken
                if self.mode is Mode.INSERT:
                    status = await self.conn.execute(self._write_sql())
                    inserted, updated = int(status.split()[-1]), 0
                else:
                    record = await self.conn.fetchrow(self._write_sql())
                    assert record is not None
                    inserted, updated = record["inserted"], record["updated"]
        except (asyncpg.PostgresError, _RuleBroken) as exc:
            if isinstance(exc, asyncpg.QueryCanceledError):
                raise
            problems, more = await self.checks.find_problems()
            if not problems:
                detail = f" ({exc.detail})" if getattr(exc, "detail", None) else ""
                problems = [Problem(shown(f"the database refused the rows: {exc}{detail}") or "")]
            raise ImportRejected(problems, more=more) from None
        if self._has("id"):
            await self._advance_sequence()
        return rows, inserted, updated

    async def _advance_sequence(self) -> None:
        """Move the id sequence up to the largest id, never past it and never back.

        Imported ids are at most MAX_IMPORTED_ID, so the panel and the shop keep room for
        their own inserts after any accepted import.
        """
        await self.conn.execute(
            f"SELECT setval(seq, top) FROM (SELECT pg_get_serial_sequence('{self.spec.table}',"
            f" 'id')::regclass AS seq, (SELECT max(id) FROM {quote_ident(self.spec.table)})"
            " AS top) x WHERE top > COALESCE(pg_sequence_last_value(seq), 0)"
        )


async def import_csv(
    conn: asyncpg.Connection,
    spec: CsvTable,
    header: CsvHeader,
    options: ImportOptions,
    file: BinaryIO,
    on_success: Callable[[ImportResult], Awaitable[None]],
    *,
    seconds_left: float,
) -> ImportResult:
    """Stage, check and write the file in one transaction; ImportRejected writes nothing.

    `on_success` runs inside the transaction (the audit entry commits with the rows). No
    statement runs longer than `seconds_left` (the rest of the import's time limit).
    """
    check_header(spec, header, options.mode)
    started = time.perf_counter()
    importer = Importer(conn, spec, header, options)
    async with conn.transaction():
        # a million-row file takes longer than the pool's default statement timeout
        await conn.execute(
            "SELECT set_config('statement_timeout', $1, true)",
            str(max(1, math.ceil(seconds_left * 1000))),
        )
        if options.date_order is not None:
            await conn.execute(
                "SELECT set_config('DateStyle', $1, true)", options.date_order.datestyle
            )
        await importer.stage(file)
        rows, inserted, updated = await importer.write()
        result = ImportResult(rows, inserted, updated, time.perf_counter() - started)
        await on_success(result)
    return result
