"""The direct path: an import that COPY alone can write goes straight into its table.

Staging the file and then inserting from the staging table is two passes in PostgreSQL
where `psql \\copy` makes one. An insert whose every field is a column taken as written (no
record named by its label, no decimal comma, no ignored field, no `version`) is copied into
the table itself, inside a savepoint. The rules the table does not enforce are kept:

- a rule on the typed value (ids in range, no NaN, sane years, email addresses) is checked
  by the COPY itself, as each row is read: its WHERE calls `csv_refuse_row` (migration 016),
  which raises, for a row that breaks one;
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
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import BinaryIO

import asyncpg

from admin.csvio import rule_check
from admin.csvio.formats import FileFormat
from admin.csvio.mapping import ColumnMapping
from admin.csvio.options import ImportOptions, Mode
from admin.csvio.screens import Screen, Screening, screen_hits
from admin.csvio.spool import read_blocks
from admin.csvio.tables import Check, CsvTable
from admin.ops import metrics
from admin.sql import quote_ident

# an empty field somewhere: two delimiters in a row, one at the start or end of a line, or
# an empty quoted field; a line break and a delimiter around it are enough to suspect one
EMPTY_FIELD_SCREENS = (
    '{d}(?:[{d}\\r\\n]|""[{d}\\r\\n])',
    '\\n(?:{d}|""[{d}\\r\\n])',
    '\\r(?:{d}|""[{d}\\r\\n])',
)


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
    value_rules: tuple[str, ...]  # SQL over the row's columns: true when a row breaks one
    # each column's type where a value rule reads it, else text (csvio.rule_check)
    rule_types: tuple[str, ...]
    costly_rules: bool  # worth checking beside the COPY (csvio.rule_check)
    screens: tuple[str, ...]  # the screens of the rules on the text as written
    folded_screens: tuple[str, ...]

    def screening(self, delimiter: str) -> Screening | None:
        if not self.screens and not self.folded_screens:
            return None
        return Screening(self.screens, self.folded_screens, delimiter)


def plan(spec: CsvTable, mapping: ColumnMapping, options: ImportOptions) -> DirectPlan | None:
    """How the file can be copied straight into the table, or None when it must be staged."""
    if options.mode is not Mode.INSERT or options.dry_run or not mapping.fields:
        return None
    columns: list[str] = []
    value_rules: list[str] = []
    rule_types: list[str] = []
    costly_rules = False
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
        rule_type = "text"
        for check in column.checks:
            if check.table_enforces or not _applies(check, options):
                continue
            if "{t}" not in check.sql:
                value_rules.append("(" + check.sql.format(v=quote_ident(column.name)) + ")")
                rule_type = column.stored_type
                costly_rules = costly_rules or check.costly
            elif check.screens or check.folded_screens:
                screens.extend(check.screens)
                folded.extend(check.folded_screens)
            else:
                return None
        columns.append(column.name)
        rule_types.append(rule_type)
    if not spec.relation[1]:
        return None
    required = frozenset(c.name for _, c in mapping.columns if c.default_sql is None)
    return DirectPlan(
        tuple(columns),
        required,
        tuple(value_rules),
        tuple(rule_types),
        costly_rules,
        tuple(dict.fromkeys(screens)),
        tuple(dict.fromkeys(folded)),
    )


def _applies(check: Check, options: ImportOptions) -> bool:
    return check.waived_by is None or not options.chosen(check.waived_by)


def can_follow(direct: DirectPlan | None, delimiter: str, screen: Screen | None) -> bool:
    """Whether the file can be copied straight in while it arrives: a direct import whose
    screens (if it needs any) are the ones being fed the file as it is received."""
    if direct is None:
        return False
    screening = direct.screening(delimiter)
    return screening is None or (screen is not None and screen.screening == screening)


class _ScreenHit(Exception):
    """A screen found something in a file being copied as it arrives."""


async def _unless_screened(blocks: AsyncIterator[bytes], screen: Screen) -> AsyncIterator[bytes]:
    """The blocks, as long as the screen (fed each block before it is readable) finds
    nothing; _ScreenHit ends the COPY otherwise."""
    async for block in blocks:
        if screen.hit:
            raise _ScreenHit
        yield block
    if screen.finish():
        raise _ScreenHit


async def copy_direct(
    conn: asyncpg.Connection,
    spec: CsvTable,
    direct: DirectPlan,
    file: BinaryIO,
    file_format: FileFormat,
    screened: Screen | None = None,
    arriving: AsyncIterator[bytes] | None = None,
    beside: asyncpg.Connection | None = None,
) -> Outcome:
    """Copy the file into the table, its rules checked; or nothing written, the file to be
    staged. `screened`: screens fed the file as it was received; used when they are the
    ones this file needs. `arriving`: the file's bytes as they arrive (can_follow holds),
    read instead of the file, which is then not whole yet. `beside`: a spare connection
    that checks the value rules while the COPY runs (csvio.rule_check)."""
    screening = direct.screening(file_format.delimiter)
    source: BinaryIO | AsyncIterator[bytes] = file
    blocks: AsyncIterator[bytes] | None = None
    if arriving is not None:
        source = blocks = arriving
        if screening is not None:
            assert screened is not None and screened.screening == screening  # can_follow
            source = blocks = _unless_screened(arriving, screened)
    elif screening is not None:
        if screened is not None and screened.screening == screening:
            hit = screened.finish()
        else:
            hit = await asyncio.to_thread(screen_hits, file, screening)
        if hit:
            return Outcome(None)
    if not direct.value_rules:
        beside = None
    else:
        where = "in_copy" if beside is None else "beside"
        metrics.CSV_RULE_CHECKS.labels(spec.table, where).inc()
    mark = rule_check.ReadMark()
    checking: asyncio.Task[None] | None = None
    try:
        async with conn.transaction():
            if arriving is None:
                file.seek(0)
            if beside is not None:
                settings = await rule_check.settings_of(conn)
                source = mark.lead(blocks or read_blocks(file, rule_check.READ_BLOCK))
                checking = asyncio.create_task(
                    rule_check.check_rules(
                        beside,
                        dict(zip(direct.columns, direct.rule_types, strict=True)),
                        refusing_where(direct, keep=False) or "false",
                        file_format,
                        mark.trail(file.fileno()),
                        settings,
                    )
                )
                checking.add_done_callback(mark.ended_check)
            schema, name = spec.relation
            status = await conn.copy_to_table(
                name,
                schema_name=schema,
                source=source,
                columns=list(direct.columns),
                format="csv",
                header=True,
                delimiter=file_format.delimiter,
                encoding=file_format.encoding,
                force_null=list(direct.columns),
                where=None if checking is not None else refusing_where(direct),
            )
            if checking is not None:
                await checking
            # deferred keys would otherwise be checked at commit, past the fallback
            await conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
    except _ScreenHit:
        return Outcome(None)
    except rule_check.RulesBroken:
        metrics.CSV_RULE_CHECKS.labels(spec.table, "beside_refused").inc()
        return Outcome(None)
    except asyncpg.PostgresError as exc:
        if isinstance(exc, asyncpg.QueryCanceledError):
            raise
        if arriving is None:
            file.seek(0)
        # a broken rule (csv_refuse_row's error) is found again by the staged checks
        return Outcome(None, exc if _staging_refuses_too(exc, direct) else None)
    finally:
        if checking is not None:
            mark.abandon()
            await asyncio.wait([checking])
    return Outcome(int(status.split()[-1]))


def _staging_refuses_too(exc: asyncpg.PostgresError, direct: DirectPlan) -> bool:
    """True for a value or constraint error that the staged insert would meet as well
    (the same input functions and constraints); not for an empty field the staging path
    fills with the column's default, nor for a lock or a deadlock, which may pass next time."""
    if isinstance(exc, asyncpg.NotNullViolationError):
        return getattr(exc, "column_name", None) in direct.required
    if isinstance(exc, asyncpg.BadCopyFileFormatError):
        return False  # the staging COPY reads the file again, and skips what is blank
    return isinstance(exc, (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError))


def refusing_where(direct: DirectPlan, *, keep: bool = True) -> str | None:
    """COPY's WHERE: `keep` for every row, and an error (csv_refuse_row) for one that breaks
    a rule; None when there is no rule. Only a broken row calls the function (a CASE), and
    its argument is a column, so the call is never folded into a constant ahead of the rows."""
    if not direct.value_rules:
        return None
    column = quote_ident(direct.columns[0])
    broken = " OR ".join(direct.value_rules)
    return f"CASE WHEN {broken} THEN csv_refuse_row({column}) ELSE {str(keep).lower()} END"
