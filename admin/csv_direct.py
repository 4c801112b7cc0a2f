"""The direct path: an import that COPY alone can write goes straight into its table.

Staging the file and then inserting from the staging table is two passes in PostgreSQL
where `psql \\copy` makes one. An insert whose every field is a column taken as written (no
record named by its label, no decimal comma, no ignored field, no `version`) is copied into
the table itself, inside a savepoint. The rules the table does not enforce are kept:

- a rule on the typed value (ids in range, no NaN, sane years, email addresses) is checked
  afterwards over the rows the COPY wrote, found by their xmin (the savepoint's own
  transaction id);
- a rule on the text as written (ambiguous dates, silent rounding, trailing spaces cut from
  a too-long value) has a screen, a regular expression over the file's bytes that finds
  every field that could break it; a file the screen finds anything in is staged.

An empty field, quoted or not, is NULL here as there. A column that takes its default for
an empty field must be NOT NULL and the file must have no empty field (screened), or the
file is staged: a COPY that failed there would have used up sequence values for nothing, and
the staged import would then give other generated keys. When anything fails (COPY, a rule, a
deferred key), the savepoint is rolled back and the caller stages the file, which names
every problem in one pass.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import BinaryIO

import asyncpg

from admin.csv_format import FileFormat
from admin.csv_mapping import ColumnMapping
from admin.csv_options import ImportOptions, Mode
from admin.csv_tables import Check, CsvTable
from admin.sql import quote_ident

MARK = "csv_import_mark"
# an empty field somewhere: two delimiters in a row, one at the start or end of a line, or
# an empty quoted field; a line break and a delimiter around it are enough to suspect one
EMPTY_FIELD_SCREENS = (
    '{d}(?:[{d}\\r\\n]|""[{d}\\r\\n])',
    '\\n(?:{d}|""[{d}\\r\\n])',
    '\\r(?:{d}|""[{d}\\r\\n])',
)
SCREEN_BLOCK = 1 << 20
# a screen's match is at most this long (a numeric scale is at most 1,000): blocks overlap by it
SCREEN_OVERLAP = 2048
# the rules on typed values are checked by a scan of the whole table (the xmin has no
# index): past this many times the file's size (and a size any scan reads in a blink),
# staging the file costs less
TABLE_TO_FILE = 8
TABLE_ALWAYS_SCANNED = 16 << 20


class _Refused(Exception):
    """The copied rows break a rule the table does not enforce."""


@dataclass(frozen=True)
class Outcome:
    written: int | None  # the rows copied; None: nothing was written, stage the file
    # what refused the rows, when the staging path's insert would certainly refuse them too
    # (it then looks for the problems at once instead of trying the insert)
    refused: asyncpg.PostgresError | None = None


@dataclass(frozen=True)
class DirectPlan:
    columns: tuple[str, ...]  # the table's columns, in the file's order
    required: frozenset[str]  # those an empty field leaves NULL on the staging path too
    value_rules: tuple[str, ...]  # SQL over the table aliased t: true when a row breaks one
    screens: tuple[str, ...]  # the screens of the rules on the text as written
    folded_screens: tuple[str, ...]


def plan(spec: CsvTable, mapping: ColumnMapping, options: ImportOptions) -> DirectPlan | None:
    """How the file can be copied straight into the table, or None when it must be staged."""
    if options.mode is not Mode.INSERT or options.dry_run or not mapping.fields:
        return None
    columns: list[str] = []
    value_rules: list[str] = []
    screens: list[str] = []
    folded: list[str] = []
    for field in mapping.fields:
        target = field.target
        if target is None or target.column is None or target.by:
            return None
        column = target.column
        if column.always_generated or (field.decimal_comma and column.decimal):
            return None
        if column.default_sql is not None:
            # an empty field takes the default when staged, NULL in COPY: where the column
            # refuses NULL, a file with no empty field at all is copied (a COPY that failed
            # would have used up sequence values that a staged import then skips)
            if column.nullable or len(mapping.fields) == 1:
                return None
            screens.extend(EMPTY_FIELD_SCREENS)
        for check in column.checks:
            if check.table_enforces or not _applies(check, options):
                continue
            if "{t}" not in check.sql:
                value_rules.append("(" + check.sql.format(v=f"t.{quote_ident(column.name)}") + ")")
            elif check.screens or check.folded_screens:
                screens.extend(check.screens)
                folded.extend(check.folded_screens)
            else:
                return None
        columns.append(column.name)
    if not spec.relation[1]:
        return None
    required = frozenset(c.name for _, c in mapping.columns if c.default_sql is None)
    return DirectPlan(
        tuple(columns),
        required,
        tuple(value_rules),
        tuple(dict.fromkeys(screens)),
        tuple(dict.fromkeys(folded)),
    )


def _applies(check: Check, options: ImportOptions) -> bool:
    return check.waived_by is None or not options.chosen(check.waived_by)


def screen_patterns(screens: tuple[str, ...], delimiter: str) -> list[re.Pattern[bytes]]:
    """The screens, for a file with this delimiter (searched one by one: each starts with a
    character, which the search skips to at C speed)."""
    escaped = re.escape(delimiter)
    return [re.compile(s.replace("{d}", escaped).encode("ascii")) for s in screens]


def fold_table(delimiter: str) -> bytes:
    """What a folded screen reads: digits as 0, `-/.` as -, the delimiter, quotes and line
    breaks as \x01, other white space as a space; so a search skips to one byte."""
    table = bytearray(range(256))
    for digit in b"0123456789":
        table[digit] = ord("0")
    for separator in b"-/.":
        table[separator] = ord("-")
    for space in b" \t\f\v":
        table[space] = ord(" ")
    for start in b'\r\n"' + delimiter.encode("ascii"):
        table[start] = 1
    return bytes(table)


def screen_hits(
    file: BinaryIO,
    patterns: list[re.Pattern[bytes]],
    folded: list[re.Pattern[bytes]] = (),  # type: ignore[assignment]
    table: bytes = b"",
) -> bool:
    """True when a pattern finds anything in the file, or a folded pattern in its folded
    bytes (read in blocks, from its start)."""
    file.seek(0)
    tail = b"\n"  # the file's first field starts a line
    try:
        while True:
            block = file.read(SCREEN_BLOCK)
            last = not block
            data = tail + (block or b"\n")  # and its last field ends one
            if any(p.search(data) for p in patterns):
                return True
            if folded:
                folded_data = data.translate(table)
                if any(p.search(folded_data) for p in folded):
                    return True
            if last:
                return False
            tail = data[-SCREEN_OVERLAP:]
    finally:
        file.seek(0)


async def copy_direct(
    conn: asyncpg.Connection,
    spec: CsvTable,
    direct: DirectPlan,
    file: BinaryIO,
    file_format: FileFormat,
) -> Outcome:
    """Copy the file into the table, its rules checked; or nothing written, the file to be
    staged."""
    if direct.screens or direct.folded_screens:
        patterns = screen_patterns(direct.screens, file_format.delimiter)
        folded = [re.compile(s.encode("ascii")) for s in direct.folded_screens]
        table = fold_table(file_format.delimiter)
        if await asyncio.to_thread(screen_hits, file, patterns, folded, table):
            return Outcome(None)
    if direct.value_rules and not await _table_small_enough(conn, spec, file):
        return Outcome(None)
    try:
        async with conn.transaction():
            mark = await _mark(conn) if direct.value_rules else None
            file.seek(0)
            schema, name = spec.relation
            status = await conn.copy_to_table(
                name,
                schema_name=schema,
                source=file,
                columns=list(direct.columns),
                format="csv",
                header=True,
                delimiter=file_format.delimiter,
                encoding=file_format.encoding,
                force_null=list(direct.columns),
            )
            if mark is not None and await _breaks_a_rule(conn, spec, direct, mark):
                raise _Refused
            # deferred keys would otherwise be checked at commit, past the fallback
            await conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
    except (asyncpg.PostgresError, _Refused) as exc:
        if isinstance(exc, asyncpg.QueryCanceledError):
            raise
        file.seek(0)
        certain = isinstance(exc, asyncpg.PostgresError) and _staging_refuses_too(exc, direct)
        return Outcome(None, exc if certain else None)
    return Outcome(int(status.split()[-1]))


def _staging_refuses_too(exc: asyncpg.PostgresError, direct: DirectPlan) -> bool:
    """True for a value or constraint error that the staged insert would meet as well
    (the same input functions and constraints); not for an empty field the staging path
    fills with the column's default, nor for a lock or a deadlock, which may pass next time."""
    if isinstance(exc, asyncpg.NotNullViolationError):
        return getattr(exc, "column_name", None) in direct.required
    return isinstance(exc, (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError))


async def _table_small_enough(conn: asyncpg.Connection, spec: CsvTable, file: BinaryIO) -> bool:
    size = await conn.fetchval("SELECT pg_relation_size(to_regclass($1))", spec.qualified)
    file.seek(0, 2)
    file_size = file.tell()
    file.seek(0)
    return int(size or 0) <= max(TABLE_TO_FILE * file_size, TABLE_ALWAYS_SCANNED)


async def _mark(conn: asyncpg.Connection) -> int:
    """The savepoint's transaction id: a row written here carries it as its xmin."""
    await conn.execute(f"CREATE TEMP TABLE {MARK} (x int) ON COMMIT DROP")
    return int(await conn.fetchval(f"INSERT INTO {MARK} VALUES (1) RETURNING xmin"))


async def _breaks_a_rule(
    conn: asyncpg.Connection, spec: CsvTable, direct: DirectPlan, mark: int
) -> bool:
    return bool(
        await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {spec.qualified} t "
            f"WHERE t.xmin = $1::xid AND ({' OR '.join(direct.value_rules)}))",
            mark,
        )
    )
