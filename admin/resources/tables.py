"""What the catalog says about a table: frozen facts, read by catalog.py, never edited."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Kind(enum.Enum):
    """How a column's values are shown, edited, parsed and compared."""

    INTEGER = "integer"
    NUMERIC = "numeric"
    FLOAT = "float"
    TEXT = "text"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"  # without time zone
    TIMESTAMPTZ = "timestamptz"
    UUID = "uuid"
    ENUM = "enum"
    JSON = "json"
    ARRAY = "array"
    BYTEA = "bytea"
    UNKNOWN = "unknown"


# typname of the base type -> kind; anything else is UNKNOWN (shown as a size, read-only)
KINDS_BY_TYPE = {
    "int2": Kind.INTEGER,
    "int4": Kind.INTEGER,
    "int8": Kind.INTEGER,
    "numeric": Kind.NUMERIC,
    "float4": Kind.FLOAT,
    "float8": Kind.FLOAT,
    "text": Kind.TEXT,
    "varchar": Kind.TEXT,
    "bpchar": Kind.TEXT,
    "citext": Kind.TEXT,
    "name": Kind.TEXT,
    "bool": Kind.BOOLEAN,
    "date": Kind.DATE,
    "timestamp": Kind.TIMESTAMP,
    "timestamptz": Kind.TIMESTAMPTZ,
    "uuid": Kind.UUID,
    "json": Kind.JSON,
    "jsonb": Kind.JSON,
    "bytea": Kind.BYTEA,
}

INTEGER_RANGES = {
    "int2": (-(2**15), 2**15 - 1),
    "int4": (-(2**31), 2**31 - 1),
    "int8": (-(2**63), 2**63 - 1),
}


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    position: int
    type_sql: str  # format_type(): quoted and with modifiers, ready for a cast
    type_name: str  # the base type's typname (a domain's base, an array's element + "[]")
    kind: Kind
    element_kind: Kind | None = None  # arrays: the elements' kind
    element_type_sql: str | None = None
    nullable: bool = True
    default_sql: str | None = None
    identity: str = ""  # "a" GENERATED ALWAYS, "d" BY DEFAULT, "" none
    generated: bool = False  # GENERATED ALWAYS AS (expr) STORED
    choices: tuple[str, ...] = ()  # enum labels, or the values of a CHECK (col IN (...))
    max_length: int | None = None  # varchar(n), char(n)
    numeric_scale: int | None = None
    numeric_precision: int | None = None
    integer_range: tuple[int, int] | None = None
    comment: str | None = None

    @property
    def has_default(self) -> bool:
        return self.default_sql is not None or bool(self.identity) or self.generated


@dataclass(frozen=True)
class Constraint:
    """A primary key, unique, check or foreign key constraint (or a unique index)."""

    name: str
    kind: str  # "p", "u", "c", "f", or "i" for a unique index that is no constraint
    columns: tuple[str, ...]
    definition: str = ""


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str  # "a" no action, "r" restrict, "c" cascade, "n" set null, "d" set default
    # the table the key is declared on (for keys listed under the referenced table)
    schema: str = ""
    table: str = ""


@dataclass(frozen=True)
class IndexInfo:
    name: str
    method: str  # btree, gin, gist, hash, brin...
    keys: tuple[str | None, ...]  # column names; None where the key is an expression
    key_definitions: tuple[str, ...]  # each key as pg_get_indexdef prints it
    opclasses: tuple[str, ...]
    unique: bool = False
    partial: bool = False
    # pg_index.indoption per key: bit 1 DESC, bit 2 NULLS FIRST (btree); missing keys 0
    options: tuple[int, ...] = ()

    @property
    def leading_column(self) -> str | None:
        return self.keys[0] if self.keys else None

    def descending(self, position: int) -> bool:
        return bool(self._option(position) & 1)

    def nulls_first(self, position: int) -> bool:
        return bool(self._option(position) & 2)

    def _option(self, position: int) -> int:
        return self.options[position] if position < len(self.options) else 0


@dataclass(frozen=True)
class TableInfo:
    oid: int
    schema: str
    name: str
    relkind: str  # r table, p partitioned, v view, m materialized view, f foreign table
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    indexes: tuple[IndexInfo, ...] = ()
    # pg_class.reltuples; for a table never analyzed, an upper bound from its size
    estimated_rows: float = -1.0
    comment: str | None = None
    referenced_by: tuple[ForeignKey, ...] = field(default=())

    @property
    def is_view(self) -> bool:
        return self.relkind in ("v", "m")

    @property
    def writable(self) -> bool:
        return self.relkind in ("r", "p") and bool(self.primary_key)

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)

    def constraint_columns(self, name: str) -> tuple[str, ...]:
        found = next((c for c in self.constraints if c.name == name), None)
        return found.columns if found else ()
