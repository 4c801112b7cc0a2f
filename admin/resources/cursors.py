"""Keyset cursors: a position in a sorted list (the sort columns' values and the primary key),
carried in the URL, checked strictly against the table's current sort when it comes back.
A sort is one column, or several that an index leads with, each ascending or descending, any
of them perhaps NULL (see Table.sort_combinations); the primary key always breaks ties, in the
first column's direction."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from admin import pg_input
from admin.resources import values
from admin.resources.model import Column, SortKey, Table
from admin.resources.tables import Kind

MAX_CURSOR_LENGTH = 2000


class InvalidQuery(ValueError):
    """A list parameter that cannot be honoured; the message is shown to the user (400)."""


Sort = Sequence[SortKey]


def sort_name(sort: Sort) -> str:
    return ",".join(k.spelled for k in sort)


@dataclass(frozen=True)
class Cursor:
    sort: str
    value: Any  # the sort column's value (None: a NULL); a tuple for several columns
    key: tuple[Any, ...]  # the primary key


def _text(column: Column, value: Any) -> str | None:
    return None if value is None else values.key_text(column.info, value)


def encode(table: Table, sort: Sort, row: Any) -> str:
    key = [_text(c, row[c.name]) for c in table.primary_key]
    texts = [_text(k.column, row[k.column.name]) for k in sort]
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
            return Cursor(sort=key_name, value=_typed(sort[0].column, value), key=typed_key)
        if type(value) is not list or len(value) != len(sort):
            raise ValueError(value)
        # a NULL only where the column allows one (_typed refuses it elsewhere)
        typed = tuple(_typed(k.column, v) for k, v in zip(sort, value, strict=True))
        return Cursor(sort=key_name, value=typed, key=typed_key)
    except InvalidQuery:
        raise
    except (ValueError, TypeError, binascii.Error, UnicodeError, RecursionError):
        raise InvalidQuery("The page cursor is not valid.") from None


def condition(
    table: Table, sort: Sort, cursor: Cursor, *, ascending: bool, first_param: int
) -> tuple[str, list[object]]:
    """The rows past `cursor` when travelling with the first column `ascending` (PostgreSQL's
    default NULL placement: last when ascending, first when descending)."""
    op = ">" if ascending else "<"
    key_cols = [c.quoted for c in table.primary_key]
    key_params = [f"${first_param + i}" for i in range(len(key_cols))]
    key_row = _row(key_cols)
    key_values = _row(key_params)
    args: list[object] = list(cursor.key)
    if len(sort) > 1:
        if any(k.flipped or k.column.info.nullable for k in sort):
            return _expanded(table, sort, cursor, ascending=ascending, first_param=first_param)
        # one direction, never NULL: one row comparison (what an index scan starts from)
        value_params = [f"${first_param + len(key_cols) + i}" for i in range(len(sort))]
        columns = ", ".join([*(k.column.quoted for k in sort), *key_cols])
        params = ", ".join([*value_params, *key_params])
        return f"({columns}) {op} ({params})", [*args, *cursor.value]
    only = sort[0].column
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


@dataclass(frozen=True)
class _Step:
    """One column of the order as travelled: its SQL, direction and the cursor's value."""

    sql: str
    descending: bool
    nullable: bool
    value: Any
    param: str = ""  # the value's parameter ("" for a NULL)


def _expanded(
    table: Table, sort: Sort, cursor: Cursor, *, ascending: bool, first_param: int
) -> tuple[str, list[object]]:
    """Directions differ or NULLs may come: column past its value, or equal and the next one
    past, and so on (NULL-aware), behind a bound on the first column an index scan can
    start from."""
    args: list[object] = []

    def step(column: Column, descending: bool, value: Any) -> _Step:
        param = ""
        if value is not None:
            args.append(value)
            param = f"${first_param + len(args) - 1}"
        return _Step(column.quoted, descending, column.info.nullable, value, param)

    steps = [
        step(k.column, ascending == k.flipped, v) for k, v in zip(sort, cursor.value, strict=True)
    ]
    steps += [step(c, not ascending, v) for c, v in zip(table.primary_key, cursor.key, strict=True)]
    # the trailing columns that share a direction and are never NULL: one row comparison
    tail = len(steps) - 1
    while (
        tail > 0
        and steps[tail - 1].descending == steps[-1].descending
        and not steps[tail - 1].nullable
        and steps[tail - 1].value is not None
    ):
        tail -= 1
    rest = steps[tail:]
    op = "<" if rest[0].descending else ">"
    expression = f"{_row([s.sql for s in rest])} {op} {_row([s.param for s in rest])}"
    for s in reversed(steps[:tail]):
        past = _past(s)
        equal = f"{s.sql} IS NULL" if s.value is None else f"{s.sql} = {s.param}"
        joined = f"{equal} AND {expression}"
        expression = f"({past} OR {joined})" if past else f"({joined})"
    bound = _bound(steps[0])
    return (f"{bound} AND {expression}" if bound else expression), args


def _past(step: _Step) -> str:
    """The rows after the step's value in its column alone ("" when none are)."""
    if step.value is None:
        # NULLs come last ascending (none after them), first descending
        return f"{step.sql} IS NOT NULL" if step.descending else ""
    if step.descending:
        return f"{step.sql} < {step.param}"
    past = f"{step.sql} > {step.param}"
    return f"({past} OR {step.sql} IS NULL)" if step.nullable else past


def _bound(step: _Step) -> str:
    """Where the rows at or past the first column's value start, as an index condition
    (none for a NULL travelled descending, nor for a value of a nullable column travelled
    ascending: the NULLs after it are no range)."""
    if step.value is None:
        return "" if step.descending else f"{step.sql} IS NULL"
    if step.descending:
        return f"{step.sql} <= {step.param}"
    return "" if step.nullable else f"{step.sql} >= {step.param}"


def _row(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"({', '.join(items)})"


def order_by(table: Table, sort: Sort, *, ascending: bool) -> str:
    """The order travelled with the first column `ascending`; the key breaks ties that way."""
    direction = "ASC" if ascending else "DESC"
    keys = [f"{c.quoted} {direction}" for c in table.primary_key]
    if len(sort) == 1 and sort[0].column.name in {c.name for c in table.primary_key}:
        if len(keys) == 1:
            return "ORDER BY " + ", ".join(keys)
    columns = [f"{k.column.quoted} {'DESC' if ascending == k.flipped else 'ASC'}" for k in sort]
    return "ORDER BY " + ", ".join([*columns, *keys])
