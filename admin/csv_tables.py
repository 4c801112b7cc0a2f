"""Which columns a CSV import accepts for each table, and how each is checked.

The empty-field rule (also shown on the import page): an empty field, quoted or not, means
"no value". A required column rejects it. `id` and `created_at` are used for new rows only
(empty: generated / now()); existing rows keep theirs. Any other optional column takes its
default when empty (full_name '', is_active true, status pending), for inserted and updated
rows alike. A column left out of the file is not touched on existing rows, and new rows get
its default.

Every value the panel's forms would refuse is refused here too, on every import (not only
when the database rejects the rows): ids outside 1..MAX_IMPORTED_ID, amounts that are NaN,
negative or would be rounded, dates outside the years 1900..2200 or with an ambiguous
day/month order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# Far below bigint's maximum (the identity sequences' limit), so that after an import moves a
# sequence to the largest id, the panel and the shop can still insert about 9.2e18 rows;
# and the largest integer a JavaScript number holds exactly.
MAX_IMPORTED_ID = 2**53 - 1
YEARS = (1900, 2200)


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
    """

    sql: str
    message: str
    table_enforces: bool = False
    waived_by: Option | None = None


@dataclass(frozen=True)
class CsvColumn:
    name: str
    sql_type: str  # cast target; "text" for text columns
    type_label: str  # how a bad value is described
    required: bool = False
    default_sql: str | None = None  # used when the field is empty
    insert_only: bool = False  # never changes an existing row (id, created_at)
    checks: tuple[Check, ...] = ()
    neutralise: bool = False  # a text column exported with spreadsheet-formula protection


@dataclass(frozen=True)
class CsvTable:
    table: str
    columns: tuple[CsvColumn, ...]
    key: str  # upsert matches rows on this column
    description: str

    def column(self, name: str) -> CsvColumn:
        return next(c for c in self.columns if c.name == name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


TEXT = "text"

ID_CHECKS = (
    Check(f"{{v}} NOT BETWEEN 1 AND {MAX_IMPORTED_ID}",
          f"must be a whole number from 1 to {MAX_IMPORTED_ID:,}"),
)  # fmt: skip

TIMESTAMP_CHECKS = (
    Check(
        f"NOT ({{v}} >= '{YEARS[0]}-01-01' AND {{v}} < '{YEARS[1] + 1}-01-01')",
        f"must be a date between the years {YEARS[0]} and {YEARS[1]}",
    ),
    # 01/02/2024 is 2 January or 1 February depending on the server's DateStyle
    Check(
        r"{t} ~ '^\s*\d{{1,2}}[-/.]\d{{1,2}}[-/.]\d'",
        "is ambiguous (day/month order): write it as YYYY-MM-DD, "
        "or choose the date order (date_order=dmy or date_order=mdy)",
        waived_by=Option.DATE_ORDER,
    ),
)

USERS = CsvTable(
    table="users",
    key="username",
    description="Upsert matches users by username.",
    columns=(
        CsvColumn("id", "bigint", "whole number", insert_only=True, checks=ID_CHECKS),
        CsvColumn("username", TEXT, "text", required=True, checks=(
            Check(
                "{v} !~ '^[a-z0-9._-]{{3,50}}$'",
                "must be 3 to 50 characters from a-z, 0-9, dot, underscore and hyphen",
                table_enforces=True,
            ),
        ), neutralise=True),
        CsvColumn("email", TEXT, "text", required=True, checks=(
            # the user form's rule (declarations.users.EMAIL), stricter than the table's
            Check(
                "NOT (length({v}) <= 254"
                " AND {v} ~ '^[^@[:space:]]+@[^@[:space:]]+\\.[^@[:space:].]+$')",
                "is not an email address like name@example.com",
            ),
        ), neutralise=True),
        CsvColumn("full_name", TEXT, "text", default_sql="''", checks=(
            Check("length({v}) > 200", "is longer than 200 characters", table_enforces=True),
        ), neutralise=True),
        CsvColumn("is_active", "boolean", "boolean (true/false)", default_sql="true"),
        CsvColumn("created_at", "timestamptz", "date and time", default_sql="now()",
                  insert_only=True, checks=TIMESTAMP_CHECKS),
    ),
)  # fmt: skip

ORDER_STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")

ORDERS = CsvTable(
    table="orders",
    key="id",
    description="Upsert matches orders by id (required in upsert mode).",
    columns=(
        CsvColumn("id", "bigint", "whole number", insert_only=True, checks=ID_CHECKS),
        CsvColumn("user_id", "bigint", "whole number", required=True),
        CsvColumn("status", TEXT, "text", default_sql="'pending'", checks=(
            Check(
                "{v} NOT IN (" + ", ".join(f"'{s}'" for s in ORDER_STATUSES) + ")",
                "must be one of " + ", ".join(ORDER_STATUSES),
                table_enforces=True,
            ),
        )),
        CsvColumn("total", "numeric(12,2)", "amount (up to 10 digits, 2 decimals)",
                  required=True, checks=(
            Check("{v} < 0", "must not be negative", table_enforces=True),
            Check("{v} = 'NaN'", "must be an amount, not NaN"),
            # the cast to numeric(12,2) would round 12.345 to 12.35 without a word
            Check(
                "{v} <> (CASE WHEN {v} IS NOT NULL THEN {t}::numeric END)",
                "has more than 2 decimals: round it, "
                "or choose to round amounts (round_decimals=1)",
                waived_by=Option.ROUND_DECIMALS,
            ),
        )),
        CsvColumn("created_at", "timestamptz", "date and time", default_sql="now()",
                  insert_only=True, checks=TIMESTAMP_CHECKS),
    ),
)  # fmt: skip

TABLES = {t.table: t for t in (USERS, ORDERS)}
