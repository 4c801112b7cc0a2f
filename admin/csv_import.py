"""CSV import: COPY the received file into a staging table, check it in SQL, then write.

All of it runs in one transaction: the staging table is TEMP ... ON COMMIT DROP, so a
failed or abandoned import leaves nothing behind, and a rejected file writes zero rows.
The happy path pays for no per-cell checks: the typed INSERT runs in a savepoint, and only
when it fails are the detailed checks run to name every bad cell by line and column.
"""

from __future__ import annotations

import csv
import enum
import io
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import BinaryIO

import asyncpg

from admin.csv_problems import MAX_ERRORS, ImportRejected, Problem, ProblemList, shown
from admin.csv_tables import CsvColumn, CsvTable
from admin.csv_upload import CsvHeader
from admin.listing import quote_ident

__all__ = ["ImportRejected", "ImportResult", "Mode", "Problem", "header_names", "import_csv"]

STAGE = "csv_import_stage"
# values travel back from the database cut to this many characters (a 50 MB cell stays there)
VALUE_CHARS = 201
_NAME_SHOWN = 60

_COPY_CONTEXT = re.compile(r'COPY \S+, line (\d+)(?:, column (\w+))?(?:: "(.*)")?\Z', re.DOTALL)


class Mode(enum.Enum):
    INSERT = "insert"
    UPSERT = "upsert"

    @classmethod
    def parse(cls, raw: str | None) -> Mode:
        text = (raw or "insert").strip().lower()
        for mode in cls:
            if mode.value == text:
                return mode
        raise ValueError("The mode must be 'insert' or 'upsert'.")


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


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _field(column: CsvColumn) -> str:
    """The staged text as a value: empty means no value."""
    return f"NULLIF(s.{quote_ident(column.name)}, '')"


def _typed(column: CsvColumn) -> str:
    value = _field(column)
    return value if column.sql_type == "text" else f"{value}::{column.sql_type}"


def _valid(column: CsvColumn, alias: str = "s") -> str:
    """SQL: the staged value is absent or casts cleanly."""
    if column.sql_type == "text":
        return "true"
    ref = f"{alias}.{quote_ident(column.name)}"
    return f"(NULLIF({ref}, '') IS NULL OR csv_input_is_valid({ref}, '{column.sql_type}'))"


def _safe_typed(column: CsvColumn) -> str:
    """The typed value, or NULL where the cast would fail (for the checks that follow)."""
    if column.sql_type == "text":
        return _field(column)
    return f"(CASE WHEN {_valid(column)} THEN {_typed(column)} END)"


class Importer:
    """One import of `spec` on `conn`, inside the caller's transaction."""

    def __init__(self, conn: asyncpg.Connection, spec: CsvTable, header: CsvHeader, mode: Mode):
        self.conn = conn
        self.spec = spec
        self.header = header
        self.mode = mode
        self.present = [spec.column(name) for name in header.names]
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
            expr = _typed(column)
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
                if self.mode is Mode.INSERT:
                    status = await self.conn.execute(self._write_sql())
                    inserted, updated = int(status.split()[-1]), 0
                else:
                    record = await self.conn.fetchrow(self._write_sql())
                    assert record is not None
                    inserted, updated = record["inserted"], record["updated"]
        except asyncpg.PostgresError as exc:
            if isinstance(exc, asyncpg.QueryCanceledError):
                raise
            problems, more = await self.find_problems()
            if not problems:
                detail = f" ({exc.detail})" if getattr(exc, "detail", None) else ""
                problems = [Problem(shown(f"the database refused the rows: {exc}{detail}") or "")]
            raise ImportRejected(problems, more=more) from None
        if self._has("id"):
            await self.conn.execute(
                f"SELECT setval(seq, top) FROM (SELECT pg_get_serial_sequence('{self.spec.table}',"
                f" 'id')::regclass AS seq, (SELECT max(id) FROM {quote_ident(self.spec.table)})"
                " AS top) x WHERE top > COALESCE(pg_sequence_last_value(seq), 0)"
            )
        return rows, inserted, updated

    def _checks_sql(self) -> list[str]:
        """SELECTs of (ord, col, value, message, other_ord) for every rule a row can break."""
        parts: list[str] = []
        required = set(self.spec.required)
        if self.mode is Mode.UPSERT:
            required.add(self.spec.key)
        for column in self.present:
            name = quote_ident(column.name)
            literal = "'" + column.name + "'"
            if column.name in required:
                parts.append(
                    f"SELECT ord, {literal}, s.{name}, 'is required', NULL::bigint "
                    f"FROM {STAGE} s WHERE {_field(column)} IS NULL"
                )
            if column.sql_type != "text":
                parts.append(
                    f"SELECT ord, {literal}, s.{name}, 'is not a valid {column.type_label}', "
                    f"NULL::bigint FROM {STAGE} s WHERE NOT {_valid(column)}"
                )
            for check in column.checks:
                condition = check.sql.format(v=_safe_typed(column))
                parts.append(
                    f"SELECT ord, {literal}, s.{name}, {_literal(check.message)}, NULL::bigint "
                    f"FROM {STAGE} s WHERE {condition}"
                )
        parts.extend(self._duplicate_checks())
        parts.extend(self._table_checks())
        return parts

    def _duplicate_checks(self) -> list[str]:
        keys = {"users": ["username", "email", "id"], "orders": ["id"]}[self.spec.table]
        parts = []
        for name in keys:
            if not self._has(name):
                continue
            column = self.spec.column(name)
            value = _safe_typed(column)
            if name == "email":
                value = f"lower({value})"
            parts.append(
                f"SELECT ord, '{name}', raw, 'appears more than once in the file', first "
                f"FROM (SELECT ord, s.{quote_ident(name)} AS raw, "
                f"min(ord) OVER (PARTITION BY {value}) AS first FROM {STAGE} s "
                f"WHERE {value} IS NOT NULL) d WHERE ord > first"
            )
        return parts

    def _table_checks(self) -> list[str]:
        """Conflicts with rows already in the table (and the orders → users reference)."""
        parts = []
        insert = self.mode is Mode.INSERT
        if self.spec.table == "users":
            if insert and self._has("username"):
                parts.append(
                    f"SELECT ord, 'username', s.username, 'is already taken', NULL::bigint "
                    f"FROM {STAGE} s JOIN users u ON u.username = s.username"
                )
            if self._has("email"):
                other = "" if insert else " AND u.username IS DISTINCT FROM s.username"
                parts.append(
                    f"SELECT ord, 'email', s.email, 'belongs to another user', NULL::bigint "
                    f"FROM {STAGE} s JOIN users u ON lower(u.email) = lower(s.email){other}"
                )
        if self._has("id"):
            id_value = _safe_typed(self.spec.column("id"))
            table = quote_ident(self.spec.table)
            if self.spec.table == "users":
                other = "" if insert else " AND u.username IS DISTINCT FROM s.username"
                parts.append(
                    f"SELECT ord, 'id', s.id, 'is already used by another user', NULL::bigint "
                    f"FROM {STAGE} s JOIN users u ON u.id = {id_value}{other}"
                )
            elif insert:
                parts.append(
                    f"SELECT ord, 'id', s.id, 'is already taken', NULL::bigint "
                    f"FROM {STAGE} s JOIN {table} u ON u.id = {id_value}"
                )
        if self.spec.table == "orders" and self._has("user_id"):
            user_id = _safe_typed(self.spec.column("user_id"))
            parts.append(
                f"SELECT ord, 'user_id', s.user_id, 'is not the id of a user', NULL::bigint "
                f"FROM {STAGE} s WHERE {user_id} IS NOT NULL "
                f"AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = {user_id})"
            )
        return parts

    async def find_problems(self) -> tuple[list[Problem], bool]:
        """The first MAX_ERRORS broken cells in file order, with physical line numbers."""
        checks = self._checks_sql()
        if not checks:
            return [], False
        everything = " UNION ALL ".join(f"({part})" for part in checks)
        text = ", ".join(f"s.{quote_ident(c.name)}" for c in self.present)
        # COPY numbers rows, not lines: a row's line is the header's lines plus every earlier
        # row's one line and the line breaks (LF, CRLF or CR) inside its quoted fields.
        rows = await self.conn.fetch(
            f"""
            WITH problems AS (
                SELECT * FROM ({everything}) p(ord, col, value, message, other)
                ORDER BY ord, col LIMIT {MAX_ERRORS + 1}
            ),
            breaks AS (
                SELECT ord, length(t) - length(translate(t, E'\\r\\n', '')) AS inner_breaks
                FROM (SELECT ord, replace(concat({text}), E'\\r\\n', E'\\n') AS t
                      FROM {STAGE} s) x
            ),
            lines AS (
                SELECT ord, $1::bigint + ord + COALESCE(sum(inner_breaks) OVER (
                    ORDER BY ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS line
                FROM breaks
            )
            SELECT l.line, p.col, left(p.value, {VALUE_CHARS}) AS value, p.message,
                o.line AS other_line
            FROM problems p JOIN lines l ON l.ord = p.ord
            LEFT JOIN lines o ON o.ord = p.other
            ORDER BY p.ord, p.col
            """,
            self.header.lines,
        )
        problems = [
            Problem(
                r["message"] + (f" (first on line {r['other_line']})" if r["other_line"] else ""),
                line=int(r["line"]),
                column=r["col"],
                value=shown(r["value"]),
            )
            for r in rows[:MAX_ERRORS]
        ]
        return problems, len(rows) > MAX_ERRORS


async def import_csv(
    conn: asyncpg.Connection,
    spec: CsvTable,
    header: CsvHeader,
    mode: Mode,
    file: BinaryIO,
    on_success: Callable[[ImportResult], Awaitable[None]],
    *,
    seconds_left: float,
) -> ImportResult:
    """Stage, check and write the file in one transaction; ImportRejected writes nothing.

    `on_success` runs inside the transaction (the audit entry commits with the rows). No
    statement runs longer than `seconds_left` (the rest of the import's time limit).
    """
    check_header(spec, header, mode)
    started = time.perf_counter()
    importer = Importer(conn, spec, header, mode)
    async with conn.transaction():
        # a million-row file takes longer than the pool's default statement timeout
        await conn.execute(
            "SELECT set_config('statement_timeout', $1, true)",
            str(max(1, math.ceil(seconds_left * 1000))),
        )
        await importer.stage(file)
        rows, inserted, updated = await importer.write()
        result = ImportResult(rows, inserted, updated, time.perf_counter() - started)
        await on_success(result)
    return result
