"""The rules a staged CSV must meet, as SQL over the staging table.

Two uses: before the write, one pass answers "does any row break a rule the table itself
does not enforce?" (the table's own constraints then catch the rest while inserting); and
when anything failed, one query names every broken cell (types, rules, required values,
duplicates in the file and against the table, references, versions) by physical line and
column.
"""

from __future__ import annotations

import asyncpg

from admin.csvio.mapping import ColumnMapping, Field
from admin.csvio.options import ImportOptions, Mode
from admin.csvio.problems import Problem, shown
from admin.csvio.tables import Check, CsvColumn, CsvTable
from admin.sql import quote_ident

STAGE = "csv_import_stage"
BROKEN = "csv_import_broken"  # malformed records, when COPY refused the file
ORD = "csv_ord__"
LINE = "csv_line__"  # the physical line, when the file was staged record by record
FOUND = "csv_import_found"  # every problem of a rejected file
LINES = "csv_import_lines"  # the physical lines of the rows they name
# values travel back from the database cut to this many characters (a 50 MB cell stays there)
VALUE_CHARS = 201
ERROR_FILE_CHARS = 100_000


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _field(field: Field) -> str:
    """The staged text as a value: empty means no value (12,50 is 12.50 where the file
    writes decimal commas)."""
    if field.decimal_comma and field.target and field.target.column:
        if field.target.column.decimal:
            return f"replace(NULLIF(s.{field.stage}, ''), ',', '.')"
    return f"NULLIF(s.{field.stage}, '')"


def _alias(field: Field) -> str:
    return f"r{field.position}"


def _column(field: Field) -> CsvColumn:
    assert field.target is not None and field.target.column is not None
    return field.target.column


def typed(field: Field) -> str:
    """SQL: the staged value cast to the column's type (raises on a bad value)."""
    column = _column(field)
    if field.target and field.target.by and column.reference:
        return f"{_alias(field)}.{quote_ident(column.reference.column)}"
    value = _field(field)
    return value if column.sql_type == "text" else f"{value}::{column.sql_type}"


def _valid(field: Field) -> str:
    """SQL: the staged value is absent or casts cleanly (or names a record)."""
    column = _column(field)
    if field.target and field.target.by and column.reference:
        return f"({_field(field)} IS NULL OR {typed(field)} IS NOT NULL)"
    if column.sql_type == "text":
        return "true"
    value = _field(field)
    return f"({value} IS NULL OR csv_input_is_valid({value}, {_literal(column.sql_type)}))"


def _safe_typed(field: Field) -> str:
    """The typed value, or NULL where the cast would fail (for the checks that follow)."""
    column = _column(field)
    if column.sql_type == "text" or (field.target and field.target.by):
        return typed(field)
    return f"(CASE WHEN {_valid(field)} THEN {typed(field)} END)"


def _broken(check: Check, field: Field, *, safe: bool) -> str:
    value = _safe_typed(field) if safe else typed(field)
    return "(" + check.sql.format(v=value, t=_field(field)) + ")"


def joins(mapping: ColumnMapping) -> str:
    """LEFT JOINs resolving the fields that name referenced records (one row each: the
    naming columns are unique)."""
    parts = []
    for field, column in mapping.columns:
        target = field.target
        if target is None or not target.by or column.reference is None:
            continue
        parts.append(
            f" LEFT JOIN {column.reference.table_sql} {_alias(field)} "
            f"ON {_alias(field)}.{quote_ident(target.by)} = {_field(field)}"
        )
    return "".join(parts)


class Checks:
    """The rules for the fields of one import's staging table."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        spec: CsvTable,
        mapping: ColumnMapping,
        options: ImportOptions,
        header_lines: int,
    ) -> None:
        self.with_lines = False  # the staging table holds each record's physical line
        self.collected: bool | None = None  # FOUND and LINES made (None: not yet)
        self.conn = conn
        self.spec = spec
        self.mapping = mapping
        self.options = options
        self.header_lines = header_lines
        self.fields = [f for f, _ in mapping.columns]
        self.source = f"{STAGE} s{joins(mapping)}"

    def _applies(self, check: Check) -> bool:
        return check.waived_by is None or not self.options.chosen(check.waived_by)

    def _by_name(self) -> list[Field]:
        return [f for f in self.fields if f.target is not None and f.target.by]

    async def any_broken_outside_the_table(self) -> bool:
        """True when a row breaks a rule that the table's constraints would let through.

        Casts are not guarded here (that is cheap on the happy path): a bad value raises,
        which the caller treats like a broken rule.
        """
        conditions = [
            _broken(check, field, safe=False)
            for field in self.fields
            for check in _column(field).checks
            if not check.table_enforces and self._applies(check)
        ]
        conditions += [f"NOT {_valid(field)}" for field in self._by_name()]
        if not conditions:
            return False
        return bool(
            await self.conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {self.source} WHERE {' OR '.join(conditions)})"
            )
        )

    def typed_rows(self) -> str:
        """Each staged row with its typed values under the table's column names."""
        values = ", ".join(
            f"{_safe_typed(f)} AS {quote_ident(_column(f).name)}" for f in self.fields
        )
        return f"(SELECT s.{ORD}{', ' + values if values else ''} FROM {self.source})"

    def _blamed(self, name: str) -> Field | None:
        return next((f for f in self.fields if _column(f).name == name), None)

    def _checks_sql(self) -> list[str]:
        """SELECTs of (ord, col, value, message, other_ord) for every rule a row can break."""
        parts: list[str] = []
        required = set(self.spec.required)
        if self.options.mode is Mode.UPSERT:
            required.update(self.spec.key)
        src = self.source
        for field in self.fields:
            column = _column(field)
            literal = _literal(column.name)
            raw = f"s.{field.stage}"
            if column.name in required:
                parts.append(
                    f"SELECT s.{ORD}, {literal}, {raw}, 'is required', NULL::bigint "
                    f"FROM {src} WHERE {_field(field)} IS NULL"
                )
            target = field.target
            if target is not None and target.by and column.reference is not None:
                noun = column.reference.noun
                message = f"names no {noun}: no {noun} has this {target.by}"
                parts.append(
                    f"SELECT s.{ORD}, {literal}, {raw}, {_literal(message)}, NULL::bigint "
                    f"FROM {src} WHERE NOT {_valid(field)}"
                )
            elif column.sql_type != "text":
                parts.append(
                    f"SELECT s.{ORD}, {literal}, {raw}, "
                    f"{_literal('is not a valid ' + column.type_label)}, NULL::bigint "
                    f"FROM {src} WHERE NOT {_valid(field)}"
                )
            for check in column.checks:
                if self._applies(check):
                    parts.append(
                        f"SELECT s.{ORD}, {literal}, {raw}, {_literal(check.message)}, "
                        f"NULL::bigint FROM {src} WHERE {_broken(check, field, safe=True)}"
                    )
        parts.extend(self._row_checks())
        parts.extend(self._unique_checks())
        parts.extend(self._reference_checks())
        parts.extend(self._version_checks())
        return parts

    def _blame_select(self, blame: str, message: str, where: str, other: str = "NULL") -> str:
        field = self._blamed(blame)
        assert field is not None
        return (
            f"SELECT x.{ORD}, {_literal(blame)}, s.{field.stage}, {_literal(message)}, "
            f"{other}::bigint FROM {self.typed_rows()} x JOIN {STAGE} s ON s.{ORD} = x.{ORD} "
            f"WHERE {where}"
        )

    def _row_checks(self) -> list[str]:
        present = {_column(f).name for f in self.fields}
        return [
            self._blame_select(rule.blame, rule.message, f"({rule.condition}) IS FALSE")
            for rule in self.spec.row_checks
            if set(rule.columns) <= present
        ]

    def _unique_checks(self) -> list[str]:
        parts: list[str] = []
        present = {_column(f).name for f in self.fields}
        upsert = self.options.mode is Mode.UPSERT
        key = [quote_ident(k) for k in self.spec.key]
        for unique in self.spec.uniques:
            if not set(unique.columns) <= present:
                continue
            values = ", ".join(f"{e} AS e{i}" for i, e in enumerate(unique.expressions))
            names = [f"y.e{i}" for i in range(len(unique.expressions))]
            not_null = " AND ".join(f"{n} IS NOT NULL" for n in names)
            keys = ", ".join(f"{k} AS k{i}" for i, k in enumerate(key)) if upsert else ""
            rows = (
                f"(SELECT x.{ORD}, {values}{', ' + keys if keys else ''} "
                f"FROM {self.typed_rows()} x) y"
            )
            field = self._blamed(unique.blame)
            assert field is not None
            parts.append(
                f"SELECT d.{ORD}, {_literal(unique.blame)}, s.{field.stage}, "
                "'appears more than once in the file', d.first FROM "
                f"(SELECT y.{ORD}, min(y.{ORD}) OVER (PARTITION BY {', '.join(names)}) AS first "
                f"FROM {rows} WHERE {not_null}) d JOIN {STAGE} s ON s.{ORD} = d.{ORD} "
                f"WHERE d.{ORD} > d.first"
            )
            is_key = upsert and set(unique.columns) == set(self.spec.key)
            if is_key:
                continue
            other = ""
            if upsert:
                other = (
                    f" AND ROW({', '.join(key)}) IS DISTINCT FROM "
                    f"ROW({', '.join(f'y.k{i}' for i in range(len(key)))})"
                )
            message = "belongs to another row" if upsert else "is already in the table"
            parts.append(
                f"SELECT y.{ORD}, {_literal(unique.blame)}, s.{field.stage}, "
                f"{_literal(message)}, NULL::bigint FROM {rows} "
                f"JOIN {STAGE} s ON s.{ORD} = y.{ORD} WHERE {not_null} AND EXISTS ("
                f"SELECT 1 FROM {self.spec.qualified} WHERE "
                f"ROW({', '.join(unique.expressions)}) = ROW({', '.join(names)}){other})"
            )
        return parts

    def _reference_checks(self) -> list[str]:
        parts = []
        for field in self.fields:
            column = _column(field)
            reference = column.reference
            if reference is None or (field.target and field.target.by):
                continue
            value = _safe_typed(field)
            message = f"is not the {reference.column} of a {reference.noun}"
            parts.append(
                f"SELECT s.{ORD}, {_literal(column.name)}, s.{field.stage}, "
                f"{_literal(message)}, NULL::bigint FROM {self.source} "
                f"WHERE {value} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                f"{reference.table_sql} r WHERE r.{quote_ident(reference.column)} = {value})"
            )
        return parts

    def version_join(self) -> str:
        """The staged rows joined to the table rows they update (upsert with `version`)."""
        key = " AND ".join(f"t.{quote_ident(k)} = x.{quote_ident(k)}" for k in self.spec.key)
        return f"{self.typed_rows()} x JOIN {self.spec.qualified} t ON {key}"

    def version_value(self) -> str | None:
        field = self.mapping.version
        if field is None or self.options.mode is not Mode.UPSERT:
            return None
        return (
            f"(CASE WHEN csv_input_is_valid(NULLIF(s.{field.stage}, ''), 'bigint') "
            f"THEN NULLIF(s.{field.stage}, '')::bigint END)"
        )

    def _version_checks(self) -> list[str]:
        field = self.mapping.version
        value = self.version_value()
        if field is None or value is None:
            return []
        return [
            f"SELECT s.{ORD}, 'version', s.{field.stage}, "
            "'is not a valid whole number', NULL::bigint FROM {STAGE} s "
            f"WHERE NULLIF(s.{field.stage}, '') IS NOT NULL AND {value} IS NULL".replace(
                "{STAGE}", STAGE
            ),
            f"SELECT x.{ORD}, 'version', s.{field.stage}, "
            "'was changed by someone else since this file was exported (now version ' "
            f"|| {self.spec.version_sql} || '): export it again', NULL::bigint "
            f"FROM {self.version_join()} JOIN {STAGE} s ON s.{ORD} = x.{ORD} "
            f"WHERE {value} IS DISTINCT FROM {self.spec.version_sql} AND {value} IS NOT NULL",
        ]

    def _lines_sql(self) -> str:
        """CTEs `lines(ord, line)`: each staged row's physical line."""
        if self.with_lines:
            return f"lines AS (SELECT {ORD} AS ord, {LINE} AS line FROM {STAGE})"
        text = ", ".join(f"s.{f.stage}" for f in self.mapping.fields) or "''"
        # COPY numbers rows, not lines: a row's line is the header's lines plus every earlier
        # row's one line and the line breaks (LF, CRLF or CR) inside its quoted fields.
        return f"""
            breaks AS (
                SELECT {ORD} AS ord,
                    length(t) - length(translate(t, E'\\r\\n', '')) AS inner_breaks
                FROM (SELECT {ORD}, replace(concat({text}), E'\\r\\n', E'\\n') AS t
                      FROM {STAGE} s) x
            ),
            lines AS (
                SELECT ord, {int(self.header_lines)}::bigint + ord + COALESCE(sum(inner_breaks)
                    OVER (ORDER BY ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                    AS line
                FROM breaks
            )"""

    async def _collect(self) -> bool:
        """Every problem into FOUND and the lines of the rows they name into LINES, once
        (the page's list and the error file both read them); false when nothing is checked."""
        if self.collected is not None:
            return self.collected
        checks = self._checks_sql()
        self.collected = bool(checks)
        if not checks:
            return False
        everything = " UNION ALL ".join(f"({part})" for part in checks)
        await self.conn.execute(
            f"CREATE TEMP TABLE {FOUND} ON COMMIT DROP AS "
            f"SELECT * FROM ({everything}) p(ord, col, value, message, other)"
        )
        await self.conn.execute(
            f"CREATE TEMP TABLE {LINES} ON COMMIT DROP AS WITH {self._lines_sql()} "
            f"SELECT ord, line FROM lines WHERE ord IN (SELECT ord FROM {FOUND} "
            f"UNION SELECT other FROM {FOUND} WHERE other IS NOT NULL)"
        )
        await self.conn.execute(f"CREATE UNIQUE INDEX ON {LINES} (ord)")
        return True

    async def find_problems(self, limit: int) -> tuple[list[Problem], int]:
        """The first `limit` broken cells in file order with physical line numbers, and how
        many there are in all."""
        if not await self._collect():
            return [], 0
        rows = await self.conn.fetch(
            f"""
            SELECT l.line, p.col, left(p.value, {VALUE_CHARS}) AS value, p.message,
                o.line AS other_line, count(*) OVER () AS total
            FROM {FOUND} p JOIN {LINES} l ON l.ord = p.ord
            LEFT JOIN {LINES} o ON o.ord = p.other
            ORDER BY p.ord, p.col LIMIT {int(limit)}
            """
        )
        problems = [
            Problem(
                r["message"] + (f" (first on line {r['other_line']})" if r["other_line"] else ""),
                line=int(r["line"]),
                column=r["col"],
                value=shown(r["value"]),
            )
            for r in rows
        ]
        return problems, int(rows[0]["total"]) if rows else 0

    def error_rows_sql(self, *, broken: str | None) -> str:
        """(the fields, line, problem) of every row with a problem, in file order: the rows
        of the error file."""
        fields = [f.stage for f in self.mapping.fields]
        # a 50 MB cell would travel through this process whole: the error file keeps the
        # start of such a cell only
        columns = ", ".join(f"left(s.{f}, {ERROR_FILE_CHARS})" for f in fields)
        parts = []
        if self.collected:
            parts.append(
                f"SELECT {columns + ', ' if columns else ''}l.line, r.problem FROM ("
                "SELECT p.ord, string_agg(p.col || ': ' || p.message"
                " || COALESCE(' (first on line ' || o.line || ')', ''), '; '"
                f" ORDER BY p.col) AS problem FROM {FOUND} p LEFT JOIN {LINES} o"
                f" ON o.ord = p.other GROUP BY p.ord) r JOIN {STAGE} s ON s.{ORD} = r.ord"
                f" JOIN {LINES} l ON l.ord = r.ord"
            )
        if broken is not None:
            parts.append(f"SELECT {columns + ', ' if columns else ''}line, problem FROM {broken} s")
        if not parts:
            nulls = "".join("NULL, " for _ in fields)
            parts.append(f"SELECT {nulls}0 AS line, '' AS problem WHERE false")
        return f"SELECT * FROM ({' UNION ALL '.join(parts)}) e ORDER BY line"
