"""Keyset cursors: a position in a sorted list (the sort columns' values and the primary key),
carried in the URL, checked strictly against the table's current sort when it comes back.
A sort is one column, or several that an index leads with (never NULL: see
Table.sort_combinations); the primary key always breaks ties."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from admin import pg_input
from admin.resources import values
from admin.resources.model import Column, Table
from admin.resources.tables import Kind

MAX_CURSOR_LENGTH = 2000


class InvalidQuery(ValueError):
    """A list parameter that cannot be honoured; the message is shown to the user (400)."""


Sort = Sequence[Column]


def sort_name(sort: Sort) -> str:
    return ",".join(c.name for c in sort)


@dataclass(frozen=True)
class Cursor:
    sort: str
    value: Any  # the sort column's value (None: a NULL); a tuple for several columns
    key: tuple[Any, ...]  # the primary key


def _text(column: Column, value: Any) -> str | None:
    return None if value is None else values.key_text(column.info, value)


def encode(table: Table, sort: Sort, row: Any) -> str:
    key = [_text(c, row[c.name]) for c in table.primary_key]
    texts = [_text(c, row[c.name]) for c in sort]
    value = texts[0] if len(texts) == 1 else texts
    payload = json.dumps([sort_name(sort), value, key], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _typed(column: Column, text: Any) -> Any:
    if text is None:
        if not column.info.nullable:
            raise ValueError(text)
        return None
    if not isinstance(text, str):
        raise ValueError(text)
    # a position is compared with the column, never stored: any value PostgreSQL accepts as
    # a parameter of the column's type will do (integers within the type, enum labels)
    if column.kind is Kind.NUMERIC:
        return pg_input.numeric(text)
    if column.kind is Kind.TIMESTAMPTZ:
        return pg_input.timestamptz(text)  # a moment: the offset is part of it
    strict = column.kind in (Kind.INTEGER, Kind.ENUM)
    return values.scalar(column.kind, text, column=column.info if strict else None)


def decode(raw: str, table: Table, sort: Sort) -> Cursor:
    """The cursor in `raw` for the current sort; InvalidQuery otherwise (never a 500)."""
    text = raw.strip()
    if len(text) > MAX_CURSOR_LENGTH:
        raise InvalidQuery("The page cursor is not valid (too long).")
    try:
        padded = text + "=" * (-len(text) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8"))
        if type(data) is not list or len(data) != 3:
            raise ValueError(data)
        key_name, value, key = data
        if key_name != sort_name(sort):
            raise InvalidQuery("The page cursor belongs to another sort order; start again.")
        if type(key) is not list or len(key) != len(table.primary_key):
            raise ValueError(key)
        typed_key = tuple(_typed(c, k) for c, k in zip(table.primary_key, key, strict=True))
        if any(k is None for k in typed_key):
            raise ValueError(key)
        if len(sort) == 1:
            return Cursor(sort=key_name, value=_typed(sort[0], value), key=typed_key)
        if type(value) is not list or len(value) != len(sort):
            raise ValueError(value)
        typed = tuple(_typed(c, v) for c, v in zip(sort, value, strict=True))
        if any(v is None for v in typed):
            raise ValueError(value)
        return Cursor(sort=key_name, value=typed, key=typed_key)
    except InvalidQuery:
        raise
    except (ValueError, TypeError, binascii.Error, UnicodeError, RecursionError):
        raise InvalidQuery("The page cursor is not valid.") from None


def condition(
    table: Table, sort: Sort, cursor: Cursor, *, ascending: bool, first_param: int
) -> tuple[str, list[object]]:
    """The rows past `cursor` when travelling in `ascending` order (PostgreSQL's default
    NULL placement: last when ascending, first when descending)."""
    op = ">" if ascending else "<"
    key_cols = [c.quoted for c in table.primary_key]
    key_params = [f"${first_param + i}" for i in range(len(key_cols))]
    key_row = _row(key_cols)
    key_values = _row(key_params)
    args: list[object] = list(cursor.key)
    if len(sort) > 1:
        # the columns of a combined sort are never NULL: one row comparison
        value_params = [f"${first_param + len(key_cols) + i}" for i in range(len(sort))]
        columns = ", ".join([*(c.quoted for c in sort), *key_cols])
        params = ", ".join([*value_params, *key_params])
        return f"({columns}) {op} ({params})", [*args, *cursor.value]
    only = sort[0]
    if only.name in {c.name for c in table.primary_key} and len(key_cols) == 1:
        return f"{key_row} {op} {key_values}", args
    value_param = f"${first_param + len(key_cols)}"
    column = only.quoted
    if cursor.value is None:
        nulls = f"({column} IS NULL AND {key_row} {op} {key_values})"
        return (nulls if ascending else f"({nulls} OR {column} IS NOT NULL)"), args
    args.append(cursor.value)
    past = f"({column}, {', '.join(key_cols)}) {op} ({value_param}, {', '.join(key_params)})"
    if ascending and only.info.nullable:
        past = f"({past} OR {column} IS NULL)"
    return past, args


def _row(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"({', '.join(items)})"


def order_by(table: Table, sort: Sort, *, ascending: bool) -> str:
    direction = "ASC" if ascending else "DESC"
    keys = [f"{c.quoted} {direction}" for c in table.primary_key]
    if len(sort) == 1 and sort[0].name in {c.name for c in table.primary_key} and len(keys) == 1:
        return "ORDER BY " + ", ".join(keys)
    return "ORDER BY " + ", ".join([*(f"{c.quoted} {direction}" for c in sort), *keys])
