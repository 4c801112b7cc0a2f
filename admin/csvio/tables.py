"""What a CSV import accepts for a table, and how each value is checked: derived from the
engine's Table (the catalog's facts and the table's declaration), for every resource.

The empty-field rule (also shown on the import page): an empty field, quoted or not, means
"no value". A required column (NOT NULL without a default) rejects it. Key columns with a
generated default and `created_at` are used for new rows only (empty: generated); existing
rows keep theirs. Any other column takes its default when empty (NULL when it has none),
for inserted and updated rows alike. A column left out of the file is not touched on
existing rows, and new rows get its default.

Every value the panel's forms would refuse is refused here too, on every import (not only
when the database rejects the rows): generated ids outside 1..MAX_IMPORTED_ID, numbers that
are NaN or would be rounded, text longer than its column, dates outside the years
1900..2200 or with an ambiguous day/month order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from admin.csvio.check_words import check_words
from admin.resources.catalog import check_choices
from admin.resources.model import Column, Table
from admin.resources.tables import Kind
from admin.sql import quote_ident

# Far below bigint's maximum (the identity sequences' limit), so that after an import moves a
# sequence to the largest id, the panel and the shop can still insert about 9.2e18 rows;
# and the largest integer a JavaScript number holds exactly.
MAX_IMPORTED_ID = 2**53 - 1
YEARS = (1900, 2200)
# kept by the database: never read from a file (`version` is compared, never written)
NOT_IMPORTED = frozenset({"updated_at", "version"})
INSERT_ONLY = frozenset({"created_at"})
IMPORTED_KINDS = frozenset(Kind) - {Kind.BYTEA, Kind.UNKNOWN}
VERSION = "version"


class Option(enum.Enum):
    """Import options that let a value through that would otherwise be refused."""

    ROUND_DECIMALS = "round_decimals"
    DATE_ORDER = "date_order"


@dataclass(frozen=True)
class Check:
    """A rule on a value: `sql` is true when it is broken.

    `{v}` in `sql` stands for the typed value, `{t}` for the text as written (NULL if empty).
    `table_enforces`: a constraint of the table refuses the same values, so a successful
    insert needs no separate check. `waived_by`: the option that lets such values through.
    `screens`: for a rule on the text as written, regular expressions over the file's bytes
    (`{d}` standing for the delimiter) that together find every field that could break it,
    and more; a file they find nothing in can be copied into the table without the text
    (csvio.direct). Each starts with a character, which the search skips to at C speed.
    `folded_screens`: the same over the file's bytes folded (csvio.screens.fold_table: digits to
    0, `-/.` to -, the delimiter, quotes and line breaks to \x01) with white space dropped (a
    run of 32 white space characters is a hit by itself).
    `costly`: the rule costs more per row than reading the file again on another core (a
    pattern match): a direct import checks it beside its COPY (csvio.rule_check).
    """

    sql: str
    message: str
    table_enforces: bool = False
    waived_by: Option | None = None
    screens: tuple[str, ...] = ()
    folded_screens: tuple[str, ...] = ()
    costly: bool = False


@dataclass(frozen=True)
class Reference:
    """A single-column foreign key: the referenced table and column, and the referenced
    record's unique label column (a file may name the record by it instead of its key)."""

    table_sql: str
    column: str
    names: tuple[str, ...]  # unique text columns naming a record, its label column first
    noun: str


@dataclass(frozen=True)
class CsvColumn:
    name: str
    sql_type: str  # cast target; "text" for text columns
    stored_type: str  # the column's own type, as format_type writes it
    type_label: str  # how a bad value is described
    label: str = ""
    required: bool = False
    default_sql: str | None = None  # used when the field is empty
    insert_only: bool = False  # never changes an existing row (generated keys, created_at)
    checks: tuple[Check, ...] = ()
    neutralise: bool = False  # a text column exported with spreadsheet-formula protection
    reference: Reference | None = None
    decimal: bool = False  # a number that a file with decimal commas writes as 12,50
    always_generated: bool = False  # GENERATED ALWAYS: written with OVERRIDING SYSTEM VALUE
    nullable: bool = True


@dataclass(frozen=True)
class Unique:
    """A unique constraint or index whose columns a file can fill: `expressions` over the
    table's own column names (lower(email) for a case-insensitive one)."""

    columns: tuple[str, ...]
    expressions: tuple[str, ...]
    blame: str  # the column a duplicate is reported on


@dataclass(frozen=True)
class RowCheck:
    """A CHECK constraint of the table, as a condition over its column names."""

    columns: tuple[str, ...]
    condition: str
    message: str
    blame: str


@dataclass(frozen=True)
class CsvTable:
    table: str  # the resource's slug: URLs, audit entries, metrics
    qualified: str  # schema-qualified, quoted
    title: str
    columns: tuple[CsvColumn, ...]
    key: tuple[str, ...]  # upsert matches rows on these columns
    description: str
    uniques: tuple[Unique, ...] = ()
    row_checks: tuple[RowCheck, ...] = ()
    # the row's version as SQL over the table aliased t (its `version` column, else xmin):
    # a `version` field in the file must match it
    version_sql: str | None = None
    relation: tuple[str, str] = ("", "")  # (schema, name) unquoted, for COPY into the table

    @property
    def versioned(self) -> bool:
        return self.version_sql is not None

    def column(self, name: str) -> CsvColumn:
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def accepted(self) -> list[str]:
        """Every header name the file may use (the import columns, and `version`)."""
        return self.names + ([VERSION] if self.versioned else [])

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def export_names(self) -> list[str]:
        return self.accepted


TEXT = "text"

ID_CHECKS = (
    Check(f"{{v}} NOT BETWEEN 1 AND {MAX_IMPORTED_ID}",
          f"must be a whole number from 1 to {MAX_IMPORTED_ID:,}"),
)  # fmt: skip

TIMESTAMP_CHECKS = (
    Check(
        # no NOT over a comparison in these rules: COPY's WHERE (csvio.direct) gets NOT (a < b)
        # rewritten to a >= b without the operator's function ("cache lookup failed")
        f"({{v}} < '{YEARS[0]}-01-01' OR {{v}} >= '{YEARS[1] + 1}-01-01')",
        f"must be a date between the years {YEARS[0]} and {YEARS[1]}",
    ),
    # 01/02/2024 is 2 January or 1 February depending on the server's DateStyle
    Check(
        r"{t} ~ '^\s*\d{{1,2}}[-/.]\d{{1,2}}[-/.]\d'",
        "is ambiguous (day/month order): write it as YYYY-MM-DD, "
        "or choose the date order (date_order=dmy or date_order=mdy)",
        waived_by=Option.DATE_ORDER,
        # a field starting (after any white space) with digits, a separator, digits and a
        # separator
        folded_screens=(r"\x0100?-00?-0",),
    ),
)

TYPE_LABELS = {
    Kind.INTEGER: "whole number",
    Kind.NUMERIC: "number",
    Kind.FLOAT: "number",
    Kind.TEXT: "text",
    Kind.BOOLEAN: "boolean (true/false)",
    Kind.DATE: "date",
    Kind.TIMESTAMP: "date and time",
    Kind.TIMESTAMPTZ: "date and time",
    Kind.UUID: "UUID",
    Kind.JSON: "JSON value",
    Kind.ARRAY: "array (like {a,b})",
}

# The form rules of declared tables that the catalog does not hold, as SQL.
REFINED_CHECKS: dict[tuple[str, str, str], tuple[Check, ...]] = {
    ("public", "users", "email"): (
        Check(
            "(length({v}) > 254 OR {v} !~ '^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:].]+$')",
            "is not an email address like name@example.com",
            costly=True,
        ),
    ),
}
# Tables whose records people know by a unique column rather than their id: upsert there.
REFINED_KEYS: dict[tuple[str, str], tuple[str, ...]] = {("public", "users"): ("username",)}


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _value_checks(table: Table, column: Column) -> tuple[Check, ...]:
    info = column.info
    checks: list[Check] = []
    generated_key = (
        info.kind is Kind.INTEGER
        and table.info.primary_key == (info.name,)
        and (bool(info.identity) or (info.default_sql or "").startswith("nextval("))
    )
    if generated_key:
        checks.extend(ID_CHECKS)
    if info.kind is Kind.NUMERIC:
        checks.append(Check("{v} = 'NaN'", "must be a number, not NaN"))
        if info.numeric_scale is not None:
            # the cast to numeric(p,s) would round 12.345 to 12.35 without a word
            checks.append(
                Check(
                    "{v} <> (CASE WHEN {v} IS NOT NULL THEN {t}::numeric END)",
                    f"has more than {info.numeric_scale} decimals: round it, "
                    "or choose to round numbers (round_decimals=1)",
                    waived_by=Option.ROUND_DECIMALS,
                    # more decimals than the scale (16+ allows _ between digits), or an exponent
                    screens=(rf"\.[\d_]{{{info.numeric_scale + 1}}}", r"e[-+]?\d", r"E[-+]?\d"),
                )
            )
    if info.kind in (Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ):
        checks.extend(TIMESTAMP_CHECKS)
    if info.kind is Kind.TEXT and info.max_length is not None:
        # an explicit cast to varchar(n) cuts the text silently
        checks.append(
            Check(
                f"length({{t}}) > {info.max_length}",
                f"is longer than {info.max_length} characters",
                # COPY refuses a value too long, unless what is too much is trailing spaces
                screens=(r' [{d}\r\n"]',),
            )
        )
    checks.extend(REFINED_CHECKS.get((table.info.schema, table.info.name, info.name), ()))
    return tuple(checks)


def _type_label(column: Column) -> str:
    info = column.info
    if info.kind is Kind.ENUM or (info.choices and info.kind is not Kind.TEXT):
        return "choice (one of " + ", ".join(info.choices) + ")"
    if info.kind is Kind.NUMERIC and info.numeric_scale is not None:
        digits = (info.numeric_precision or 0) - info.numeric_scale
        return f"number (up to {digits} digits, {info.numeric_scale} decimals)"
    return TYPE_LABELS.get(info.kind, info.type_sql)


def _default(table: Table, column: Column) -> str | None:
    info = column.info
    if info.identity:
        return (
            f"nextval(pg_get_serial_sequence({_sql_literal(table.qualified)}, "
            f"{_sql_literal(info.name)}))"
        )
    return info.default_sql


def _reference(table: Table, column: Column) -> Reference | None:
    key = column.reference
    if key is None:
        return None
    target = table.targets.get(column.name)
    names: list[str] = []
    if target is not None:
        # only a unique column names one record (a name must never match two)
        partial = {i.name for i in target.info.indexes if i.partial}
        for constraint in target.info.constraints:
            if (
                constraint.kind in ("u", "i")
                and len(constraint.columns) == 1
                and constraint.name not in partial
            ):
                found = target.by_name.get(constraint.columns[0])
                if found is not None and found.kind is Kind.TEXT and found.name not in names:
                    names.append(found.name)
        label = target.label_column
        if label is not None and label.name in names:
            names.remove(label.name)
            names.insert(0, label.name)
    return Reference(
        table_sql=f"{quote_ident(key.ref_schema)}.{quote_ident(key.ref_table)}",
        column=key.ref_columns[0],
        names=tuple(n for n in names if n != key.ref_columns[0]),
        noun=target.label if target is not None else key.ref_table,
    )


def _csv_column(table: Table, column: Column, key: tuple[str, ...]) -> CsvColumn:
    info = column.info
    generated_default = bool(info.identity) or (info.default_sql or "").startswith("nextval(")
    return CsvColumn(
        name=info.name,
        label=column.label,
        # text of any kind is staged as text: the assignment cast refuses what is too long
        sql_type=TEXT if info.kind is Kind.TEXT else info.type_sql,
        stored_type=info.type_sql,
        type_label=_type_label(column),
        required=not info.nullable and not info.has_default,
        default_sql=_default(table, column),
        insert_only=info.name in INSERT_ONLY
        or (info.name in table.info.primary_key and generated_default and info.name not in key),
        checks=_value_checks(table, column),
        neutralise=info.kind is Kind.TEXT,
        reference=_reference(table, column),
        decimal=info.kind in (Kind.NUMERIC, Kind.FLOAT),
        always_generated=info.identity == "a",
        nullable=info.nullable,
    )


def _uniques(table: Table, names: set[str]) -> tuple[Unique, ...]:
    partial = {i.name for i in table.info.indexes if i.partial}
    found: list[Unique] = []
    for constraint in table.info.constraints:
        if constraint.kind not in ("p", "u", "i") or constraint.name in partial:
            continue
        if not constraint.columns or not set(constraint.columns) <= names:
            continue
        if constraint.kind == "i":
            index = next((i for i in table.info.indexes if i.name == constraint.name), None)
            if index is None:
                continue
            expressions = tuple(
                quote_ident(k) if k else d
                for k, d in zip(index.keys, index.key_definitions, strict=True)
            )
        else:
            expressions = tuple(quote_ident(c) for c in constraint.columns)
        found.append(Unique(constraint.columns, expressions, constraint.columns[-1]))
    return tuple(found)


def _row_checks(table: Table, names: set[str]) -> tuple[RowCheck, ...]:
    found: list[RowCheck] = []
    for constraint in table.info.constraints:
        if constraint.kind != "c" or not constraint.columns:
            continue
        if not set(constraint.columns) <= names:
            continue
        definition = constraint.definition.removesuffix(" NOT VALID").strip()
        if not definition.startswith("CHECK "):
            continue
        condition = definition[len("CHECK ") :]
        parsed = check_choices(definition)
        if parsed is not None:
            message = "must be one of " + ", ".join(parsed[1])
        else:
            message = check_words(condition, constraint.name)
        found.append(RowCheck(constraint.columns, condition, message, constraint.columns[-1]))
    return tuple(found)


def _key(table: Table) -> tuple[str, ...]:
    refined = REFINED_KEYS.get((table.info.schema, table.info.name))
    if refined is not None:
        return refined
    return tuple(c.name for c in table.primary_key)


def csv_table(table: Table) -> CsvTable:
    """The CSV facts of an engine table: one place, whatever the table."""
    key = _key(table)
    columns = tuple(
        _csv_column(table, c, key)
        for c in table.columns
        if c.kind in IMPORTED_KINDS
        and c.name not in NOT_IMPORTED
        and not c.info.generated
        # a key the database always generates is still how an upsert finds existing rows
        and (c.info.identity != "a" or c.name in table.info.primary_key)
    )
    names = {c.name for c in columns}
    key_words = ", ".join(key) if key else "nothing (no key: insert only)"
    return CsvTable(
        table=table.slug,
        qualified=table.qualified,
        title=table.title,
        columns=columns,
        key=key,
        description=f"Upsert matches {table.plural} by {key_words}.",
        uniques=_uniques(table, names),
        row_checks=_row_checks(table, names),
        version_sql=_version_sql(table),
        relation=(table.info.schema, table.info.name),
    )


def _version_sql(table: Table) -> str | None:
    """What an export writes as `version` and an import compares: the `version` column, or
    the row's xmin (changed by every update) where the table has none."""
    if table.bumps_version:
        return "t.version"
    if table.writable and VERSION not in table.by_name:
        return "t.xmin::text::bigint"
    return None
