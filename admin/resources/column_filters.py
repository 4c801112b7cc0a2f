"""Filters on any column, built by staff: `f.<column>.<op>=<value>` in the list's URL.

Which operators a column offers follows its kind: equals and "in list" for values, contains
for text, a range (from / to) for numbers and dates, "is empty" for nullable or text columns.
Each (column, operator) knows whether an index serves it, so the page can say which filters
stay cheap on a big table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from admin.resources import values
from admin.resources.cursors import InvalidQuery
from admin.resources.model import NUMERIC_KINDS, Column, Table
from admin.resources.tables import Kind

PREFIX = "f."
MAX_FILTERS = 12
MAX_IN_VALUES = 100
# past this many rows (planner estimate) a filter no index serves is marked slow
BIG_TABLE = 100_000

OPS = {
    "eq": "equals",
    "contains": "contains",
    "in": "is one of",
    "gte": "from",
    "lte": "to",
    "empty": "is empty",
}
DATE_KINDS = frozenset({Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ})
FILTERABLE = NUMERIC_KINDS | DATE_KINDS | {Kind.TEXT, Kind.ENUM, Kind.BOOLEAN, Kind.UUID}


@dataclass(frozen=True)
class ColumnFilter:
    column: Column
    op: str
    value: Any
    text: str

    @property
    def param(self) -> str:
        return f"{PREFIX}{self.column.name}.{self.op}"

    @property
    def label(self) -> str:
        if self.op == "empty":
            return f"{self.column.label} {'is empty' if self.value else 'is not empty'}"
        shown = self.text.replace(",", ", ") if self.op == "in" else self.text
        return f"{self.column.label} {OPS[self.op]} {shown}"


def ops_for(column: Column) -> tuple[str, ...]:
    kind = column.kind
    if kind not in FILTERABLE:
        return ()
    empty = ("empty",) if column.info.nullable or kind is Kind.TEXT else ()
    if kind is Kind.BOOLEAN:
        return ("eq", *empty)
    if kind in DATE_KINDS:
        return ("gte", "lte", *empty)
    if kind in NUMERIC_KINDS:
        return ("eq", "in", "gte", "lte", *empty)
    if kind is Kind.TEXT and not column.choices:
        return ("contains", "eq", "in", *empty)
    return ("eq", "in", *empty)


def input_type(column: Column) -> str:
    if column.kind in DATE_KINDS:
        return "date"
    if column.kind in NUMERIC_KINDS:
        return "number"
    return "text"


def filterable(table: Table) -> list[Column]:
    return [c for c in table.columns if ops_for(c)]


def indexed(table: Table, column: Column, op: str) -> bool:
    """Whether an index serves this filter (so it stays cheap however big the table)."""
    for index in table.info.indexes:
        if op == "contains":
            # a trigram index on the column itself (one on an expression serves only that)
            trigram = any("trgm" in o for o in index.opclasses)
            if index.method in ("gin", "gist") and trigram and index.leading_column == column.name:
                return True
        elif index.method == "btree" and index.leading_column == column.name:
            return True
    return False


def slow(table: Table, column: Column, op: str) -> bool:
    return table.info.estimated_rows > BIG_TABLE and not indexed(table, column, op)


def parse(table: Table, params: Mapping[str, str]) -> tuple[ColumnFilter, ...]:
    """The column filters in `params` (and one being added: add_col, add_op, add_val)."""
    raw = [(k, v) for k, v in params.items() if k.startswith(PREFIX)]
    added = str(params.get("add_col", "")).strip()
    if added:
        raw.append((f"{PREFIX}{added}.{params.get('add_op', '')}", params.get("add_val", "")))
    if len(raw) > MAX_FILTERS:
        raise InvalidQuery(f"Use at most {MAX_FILTERS} column filters.")
    found: dict[str, ColumnFilter] = {}
    for key, text in raw:
        name, _, op = key[len(PREFIX) :].rpartition(".")
        column = table.by_name.get(name)
        if column is None or not ops_for(column):
            raise InvalidQuery(f"There is no column {name[:40]!r} to filter on.")
        if op not in ops_for(column):
            allowed = ", ".join(OPS[o] for o in ops_for(column))
            raise InvalidQuery(f"{column.label} can be filtered with: {allowed}.")
        text = str(text).strip()
        if text == "" and op != "empty":
            continue
        try:
            value, canonical = _value(column, op, text)
        except ValueError as exc:
            raise InvalidQuery(f"The {column.label.lower()} filter: {exc}") from None
        item = ColumnFilter(column, op, value, canonical)
        found[item.param] = item
    return tuple(found.values())


def _value(column: Column, op: str, text: str) -> tuple[Any, str]:
    if op == "empty":
        word = text.lower() or "true"
        if word in values.TRUE_WORDS:
            return True, "1"
        if word in values.FALSE_WORDS:
            return False, "0"
        raise ValueError("choose yes or no.")
    if op == "contains":
        return text, text
    if op == "in":
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts or len(parts) > MAX_IN_VALUES:
            raise ValueError(f"give 1 to {MAX_IN_VALUES} values separated by commas.")
        parsed = [_one(column, p) for p in parts]
        return parsed, ",".join(parts)
    if column.kind in DATE_KINDS:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError("enter a date like 2024-05-31.") from None
        return day, day.isoformat()
    return _one(column, text), text


def _one(column: Column, text: str) -> Any:
    return values.scalar(column.kind, text, column=column.info)
