"""The rules a staged CSV must meet, as SQL over the staging table.

Two uses: before the write, one pass answers "does any row break a rule the table itself
does not enforce?" (the table's own constraints then catch the rest while inserting); and
when anything failed, one query names the first broken cells by physical line and column.
"""

from __future__ import annotations

import asyncpg

from admin.csv_options import ImportOptions, Mode
from admin.csv_problems import MAX_ERRORS, Problem, shown
from admin.csv_tables import Check, CsvColumn, CsvTable
from admin.sql import quote_ident

STAGE = "csv_import_stage"
# values travel back from the database cut to this many characters (a 50 MB cell stays there)
VALUE_CHARS = 201


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _field(column: CsvColumn) -> str:
    """The staged text as a value: empty means no value."""
    return f"NULLIF(s.{quote_ident(column.name)}, '')"


def typed(column: CsvColumn) -> str:
    """SQL: the staged value cast to the column's type (raises on a bad value)."""
    value = _field(column)
    return value if column.sql_type == "text" else f"{value}::{column.sql_type}"


def _valid(column: CsvColumn) -> str:
    """SQL: the staged value is absent or casts cleanly."""
    if column.sql_type == "text":
        return "true"
    ref = f"s.{quote_ident(column.name)}"
    return f"(NULLIF({ref}, '') IS NULL OR csv_input_is_valid({ref}, '{column.sql_type}'))"


def _safe_typed(column: CsvColumn) -> str:
    """The typed value, or NULL where the cast would fail (for the checks that follow)."""
    if column.sql_type == "text":
        return _field(column)
    return f"(CASE WHEN {_valid(column)} THEN {typed(column)} END)"


def _broken(check: Check, column: CsvColumn, *, safe: bool) -> str:
    value = _safe_typed(column) if safe else typed(column)
    return "(" + check.sql.format(v=value, t=_field(column)) + ")"


class Checks:
    """The rules for the columns `present` in one import's staging table."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        spec: CsvTable,
        present: list[CsvColumn],
        options: ImportOptions,
        header_lines: int,
    ) -> None:
        self.conn = conn
        self.spec = spec
        self.present = present
        self.options = options
        self.header_lines = header_lines

    def _has(self, name: str) -> bool:
        return any(c.name == name for c in self.present)

    def _applies(self, check: Check) -> bool:
        return check.waived_by is None or not self.options.chosen(check.waived_by)

    async def any_broken_outside_the_table(self) -> bool:
        """True when a row breaks a rule that the table's constraints would let through.

        Casts are not guarded here (that is cheap on the happy path): a bad value raises,
        which the caller treats like a broken rule.
        """
        conditions = [
            _broken(check, column, safe=False)
            for column in self.present
            for check in column.checks
            if not check.table_enforces and self._applies(check)
        ]
        if not conditions:
            return False
        return bool(
            await self.conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {STAGE} s WHERE {' OR '.join(conditions)})"
            )
        )

    def _checks_sql(self) -> list[str]:
        """SELECTs of (ord, col, value, message, other_ord) for every rule a row can break."""
        parts: list[str] = []
        required = set(self.spec.required)
        if self.options.mode is Mode.UPSERT:
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
                if not self._applies(check):
                    continue
                parts.append(
                    f"SELECT ord, {literal}, s.{name}, {_literal(check.message)}, NULL::bigint "
                    f"FROM {STAGE} s WHERE {_broken(check, column, safe=True)}"
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
        insert = self.options.mode is Mode.INSERT
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
            self.header_lines,
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
