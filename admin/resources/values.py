"""A column's values as text and back: form fields, URL keys, filters and audit snapshots.

`parse` raises ValueError with a message for the person who typed the text; whatever it
returns, PostgreSQL accepts for that column (so bad input is a 422 or 400, never a 500).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from admin import pg_input, pg_values
from admin.resources.tables import ColumnInfo, Kind

TRUE_WORDS = {"1", "true", "on", "yes", "t", "y"}
FALSE_WORDS = {"0", "false", "off", "no", "f", "n"}
NULL_ELEMENT = "NULL"
_INTEGER = re.compile(r"[+-]?\d{1,20}")


def parse(column: ColumnInfo, text: str, *, zone: tzinfo = UTC) -> Any:
    """The value of `text` for `column` (None for an empty optional field)."""
    kind = column.kind
    if kind is Kind.BOOLEAN:
        return _boolean(text, nullable=column.nullable)
    if kind is Kind.ARRAY:
        return _array(column, text, zone)
    if kind is Kind.JSON:
        return _json(text, nullable=column.nullable)
    if kind in (Kind.BYTEA, Kind.UNKNOWN):
        raise ValueError("This kind of value cannot be edited here.")
    if text == "" and kind is not Kind.TEXT:
        if column.nullable or column.has_default:
            return None
        raise ValueError("Enter a value.")
    return scalar(kind, text, column=column, zone=zone)


def scalar(kind: Kind, text: str, *, column: ColumnInfo | None = None, zone: tzinfo = UTC) -> Any:
    """One value of a scalar kind (also an array's element, a key part, a filter value)."""
    if not pg_input.valid_text(text):
        raise ValueError("The text contains a NUL or an invalid control character.")
    if column is not None and column.choices:
        return _choice(column, text)
    if kind is Kind.TEXT:
        if column is not None and column.max_length and len(text) > column.max_length:
            raise ValueError(f"At most {column.max_length} characters.")
        return text
    stripped = text.strip()
    if kind is Kind.INTEGER:
        return _integer(stripped, column)
    if kind is Kind.NUMERIC:
        return _numeric(stripped, column)
    if kind is Kind.FLOAT:
        try:
            return float(stripped)
        except ValueError:
            raise ValueError("Enter a number, like 1.5.") from None
    if kind is Kind.BOOLEAN:
        value = _boolean(stripped, nullable=False)
        return value
    if kind is Kind.DATE:
        return _date(stripped)
    if kind is Kind.TIMESTAMPTZ:
        return _timestamptz(stripped, zone)
    if kind is Kind.TIMESTAMP:
        return _timestamp(stripped)
    if kind is Kind.UUID:
        try:
            return uuid.UUID(stripped)
        except ValueError:
            raise ValueError("Enter a UUID, like 123e4567-e89b-12d3-a456-426614174000.") from None
    raise ValueError("This kind of value cannot be entered here.")


def _choice(column: ColumnInfo | None, text: str) -> str:
    choices = column.choices if column is not None else ()
    if choices and text not in choices:
        raise ValueError(f"Choose one of: {', '.join(choices)}.")
    return text


def _boolean(text: str, *, nullable: bool) -> bool | None:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS or (word == "" and not nullable):
        return False
    if word == "" and nullable:
        return None
    raise ValueError("Choose yes or no.")


def _integer(text: str, column: ColumnInfo | None) -> int:
    if not _INTEGER.fullmatch(text):
        raise ValueError("Enter a whole number.")
    value = int(text)
    low, high = column.integer_range if column and column.integer_range else (-(2**63), 2**63 - 1)
    if not low <= value <= high:
        raise ValueError(f"Enter a whole number from {low:,} to {high:,}.")
    return value


def _numeric(text: str, column: ColumnInfo | None) -> Decimal:
    try:
        value = pg_input.numeric(text.replace(",", ""))
    except ValueError:
        raise ValueError("Enter a number, like 19.99.") from None
    if value.is_finite() and column is not None and column.numeric_scale is not None:
        scale = column.numeric_scale
        exponent = int(value.as_tuple().exponent)
        if -exponent > scale and value != value.quantize(Decimal(1).scaleb(-scale)):
            raise ValueError(f"At most {scale} decimal places.")
        precision = column.numeric_precision
        if precision is not None and value != 0 and value.adjusted() >= precision - scale:
            limit = Decimal(10) ** (precision - scale)
            raise ValueError(f"The number must be smaller than {limit:,}.")
    elif not value.is_finite() and column is not None and column.numeric_precision:
        if value.is_infinite():  # numeric(p,s) holds NaN but not the infinities
            raise ValueError("Enter a finite number.")
    return value


def _date(text: str) -> date | pg_values.PgDateTime:
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return pg_values.parse_text(text, "date")
    except ValueError:
        raise ValueError("Enter a date like 2024-05-31.") from None


def _timestamptz(text: str, zone: tzinfo) -> datetime | pg_values.PgDateTime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            return pg_values.parse_text(text, "timestamptz")
        except ValueError:
            raise ValueError("Enter a date and time like 2024-05-31 14:30.") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _timestamp(text: str) -> datetime | pg_values.PgDateTime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            return pg_values.parse_text(text, "timestamp")
        except ValueError:
            raise ValueError("Enter a date and time like 2024-05-31 14:30.") from None
    if moment.tzinfo is not None:
        raise ValueError("Enter the time without a time zone.")
    return moment


def _json(text: str, *, nullable: bool) -> Any:
    if text.strip() == "":
        if nullable:
            return None
        raise ValueError("Enter a JSON value (for example {} or []).")

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not valid JSON.")

    try:
        return json.loads(text, parse_constant=refuse)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"Not valid JSON: {exc}.") from None


def _array(column: ColumnInfo, text: str, zone: tzinfo) -> list[Any] | None:
    """One element per line; the line NULL is a null element."""
    if text.strip() == "" and column.nullable:
        return None
    element = column.element_kind
    if element is None or element in (Kind.ARRAY, Kind.JSON, Kind.BYTEA, Kind.UNKNOWN):
        raise ValueError("This kind of list cannot be edited here.")
    values: list[Any] = []
    lines = text.splitlines() if text.strip() else []
    for number, line in enumerate(lines, start=1):
        item = line if element is Kind.TEXT else line.strip()
        if item == NULL_ELEMENT:
            values.append(None)
            continue
        try:
            # the column carries its elements' range and enum labels
            values.append(scalar(element, item, column=column, zone=zone))
        except ValueError as exc:
            raise ValueError(f"Line {number}: {exc}") from None
    return values


# ---- values as text


def form_text(column: ColumnInfo, value: Any, *, zone: tzinfo = UTC) -> str:
    """What a form field shows for `value`; parse() of it gives the value back."""
    if value is None:
        return ""
    kind = column.kind
    if kind is Kind.BOOLEAN:
        return "true" if value else "false"
    if kind is Kind.JSON:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if kind is Kind.ARRAY:
        return "\n".join(
            NULL_ELEMENT if v is None else _scalar_text(column.element_kind, v, zone) for v in value
        )
    return _scalar_text(kind, value, zone)


def _scalar_text(kind: Kind | None, value: Any, zone: tzinfo) -> str:
    if isinstance(value, pg_values.PgDateTime):
        return str(value)
    if kind is Kind.TIMESTAMPTZ and isinstance(value, datetime):
        local = value.astimezone(zone)
        return local.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return form_text_float(value)
    return str(value)


def form_text_float(value: float) -> str:
    """A float as PostgreSQL writes it: NaN and Infinity, where Python writes nan and inf."""
    if math.isfinite(value):
        return str(value)
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def key_text(column: ColumnInfo, value: Any) -> str:
    """A key part as it travels in a URL (before encoding): exact, zone-independent."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).isoformat()
    return _scalar_text(column.kind, value, UTC)


def snapshot_value(value: Any) -> Any:
    """A value as JSON for the audit log and conflict views."""
    if isinstance(value, pg_values.PgDateTime):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, float) and value != value:  # NaN: not JSON
        return "NaN"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, list | tuple):
        return [snapshot_value(v) for v in value]
    return value
