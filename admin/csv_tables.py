"""Which columns a CSV import accepts for each table, and how each is checked.

The empty-field rule (also shown on the import page): an empty field, quoted or not, means
"no value". A required column rejects it. `id` and `created_at` are used for new rows only
(empty: generated / now()); existing rows keep theirs. Any other optional column takes its
default when empty (full_name '', is_active true, status pending), for inserted and updated
rows alike. A column left out of the file is not touched on existing rows, and new rows get
its default.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """A rule on a value that already has the right type: `sql` is true when it is broken.

    `{v}` in `sql` stands for the typed value.
    """

    sql: str
    message: str


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

USERS = CsvTable(
    table="users",
    key="username",
    description="Upsert matches users by username.",
    columns=(
        CsvColumn("id", "bigint", "whole number", insert_only=True, checks=(
            Check("{v} <= 0", "must be a positive whole number"),
        )),
        CsvColumn("username", TEXT, "text", required=True, checks=(
            Check(
                "{v} !~ '^[a-z0-9._-]{{3,50}}$'",
                "must be 3 to 50 characters from a-z, 0-9, dot, underscore and hyphen",
            ),
        ), neutralise=True),
        CsvColumn("email", TEXT, "text", required=True, checks=(
            Check(
                "NOT (length({v}) BETWEEN 3 AND 254 AND {v} LIKE '%_@_%')",
                "is not an email address",
            ),
        ), neutralise=True),
        CsvColumn("full_name", TEXT, "text", default_sql="''", checks=(
            Check("length({v}) > 200", "is longer than 200 characters"),
        ), neutralise=True),
        CsvColumn("is_active", "boolean", "boolean (true/false)", default_sql="true"),
        CsvColumn("created_at", "timestamptz", "date and time", default_sql="now()",
                  insert_only=True),
    ),
)  # fmt: skip

ORDER_STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")

ORDERS = CsvTable(
    table="orders",
    key="id",
    description="Upsert matches orders by id (required in upsert mode).",
    columns=(
        CsvColumn("id", "bigint", "whole number", insert_only=True, checks=(
            Check("{v} <= 0", "must be a positive whole number"),
        )),
        CsvColumn("user_id", "bigint", "whole number", required=True),
        CsvColumn("status", TEXT, "text", default_sql="'pending'", checks=(
            Check(
                "{v} NOT IN (" + ", ".join(f"'{s}'" for s in ORDER_STATUSES) + ")",
                "must be one of " + ", ".join(ORDER_STATUSES),
            ),
        )),
        CsvColumn("total", "numeric(12,2)", "amount (up to 10 digits, 2 decimals)",
                  required=True, checks=(Check("{v} < 0", "must not be negative"),)),
        CsvColumn("created_at", "timestamptz", "date and time", default_sql="now()",
                  insert_only=True),
    ),
)  # fmt: skip

TABLES = {t.table: t for t in (USERS, ORDERS)}
