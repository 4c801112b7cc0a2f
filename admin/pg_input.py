"""Whether a value that came with a request can go to PostgreSQL as a query parameter.

Each check raises ValueError (or answers False) for what PostgreSQL or the driver would
refuse, so the caller answers 400 with a message instead of the database error becoming a
500: integers past bigint, text with NUL or a lone surrogate, numbers past numeric's
range, times that are not a moment.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from admin import pg_values

MIN_BIGINT = -(2**63)
MAX_BIGINT = 2**63 - 1
# numeric's range: up to 131072 digits before the point and 16383 after
NUMERIC_MAX_ADJUSTED = 131_071
NUMERIC_MIN_EXPONENT = -16_383


def valid_text(value: str) -> bool:
    """Whether PostgreSQL can store `value` as text: no NUL, no lone surrogate."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_bigint(value: object) -> bool:
    return type(value) is int and MIN_BIGINT <= value <= MAX_BIGINT


def numeric(text: str) -> Decimal:
    """A numeric parameter; NaN and the infinities are numeric values too."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None
    if number.is_snan():
        raise ValueError(text)
    if number.is_finite():
        exponent = int(number.as_tuple().exponent)
        if number.adjusted() > NUMERIC_MAX_ADJUSTED or exponent < NUMERIC_MIN_EXPONENT:
            raise ValueError(text)
    return number


def timestamptz(text: str) -> datetime | pg_values.PgDateTime:
    """An ISO moment with its offset (any offset: pg_values encodes it exactly, even past
    year 9999 in UTC), or PostgreSQL's text of one Python cannot hold (pg_values)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return pg_values.parse_text(text, "timestamptz")
    if moment.tzinfo is None:
        raise ValueError(text)
    return moment
