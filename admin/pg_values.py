"""Dates and times that PostgreSQL stores but Python's datetime cannot hold.

`infinity`, BC dates and years past 9999 are valid in date, timestamp and timestamptz columns
(any writer can store them), yet Python's date and datetime stop at years 1 and 9999. The
pool's codecs (db._init_connection) decode such a value to `PgDateTime`: the text PostgreSQL
writes for it (DateStyle ISO, UTC), which pages, JSON and CSV show as it is, and which
remembers its exact value so that it goes back to the database unchanged (keyset cursors).
Ordinary values still decode to date and datetime.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Literal

Kind = Literal["date", "timestamp", "timestamptz"]

# PostgreSQL counts dates in days and timestamps in microseconds from 2000-01-01 (UTC)
EPOCH_DATE = date(2000, 1, 1)
EPOCH = datetime(2000, 1, 1)
EPOCH_UTC = datetime(2000, 1, 1, tzinfo=UTC)
DAY_US = 86_400_000_000
DATE_INFINITY = 2**31 - 1
DATE_NEG_INFINITY = -(2**31)
TIME_INFINITY = 2**63 - 1
TIME_NEG_INFINITY = -(2**63)
# the range PostgreSQL accepts: 4714-11-24 BC up to (not including) 5874898-01-01 for dates,
# 294277-01-01 for timestamps (datatype/timestamp.h)
DATE_MIN = -2_451_545
DATE_END = 2_147_483_494 - 2_451_545
TIME_MIN = -211_813_488_000_000_000
TIME_END = 9_223_371_331_200_000_000


class PgDateTime(str):
    """A date or time outside Python's range, as PostgreSQL writes it (`infinity`,
    `0044-03-15 BC`, `20000-01-01 00:00:00+00`); `ticks` is its value on the wire (days or
    microseconds since 2000-01-01), `kind` its column type."""

    ticks: int
    kind: Kind

    def __new__(cls, text: str, ticks: int, kind: Kind) -> PgDateTime:
        value = super().__new__(cls, text)
        value.ticks = ticks
        value.kind = kind
        return value

    def isoformat(self, *_: object) -> str:
        """The text itself, so code written for datetime (snapshots, `<time>`) keeps working."""
        return str(self)


# ---- the proleptic Gregorian calendar for any year (the algorithms of H. Hinnant's
# "chrono-compatible low-level date algorithms"); day 0 is 2000-01-01 here.

_SHIFT = 730_425  # days from 0000-03-01 to 2000-01-01


def _civil(days: int) -> tuple[int, int, int]:
    """(astronomical year, month, day) of a day number; year 0 is 1 BC."""
    z = days + _SHIFT
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _days(year: int, month: int, day: int) -> int:
    """The day number of an astronomical (year, month, day); the inverse of _civil."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - _SHIFT


def _date_part(days: int) -> tuple[str, bool]:
    year, month, day = _civil(days)
    bc = year <= 0
    return f"{(1 - year) if bc else year:04d}-{month:02d}-{day:02d}", bc


def _infinity(ticks: int, top: int) -> str | None:
    if ticks == top:
        return "infinity"
    if ticks == -top - 1:
        return "-infinity"
    return None


def date_text(days: int) -> PgDateTime:
    text = _infinity(days, DATE_INFINITY)
    if text is None:
        text, bc = _date_part(days)
        text += " BC" if bc else ""
    return PgDateTime(text, days, "date")


def timestamp_text(micros: int, kind: Kind) -> PgDateTime:
    text = _infinity(micros, TIME_INFINITY)
    if text is None:
        days, rest = divmod(micros, DAY_US)
        seconds, fraction = divmod(rest, 1_000_000)
        minutes, second = divmod(seconds, 60)
        hour, minute = divmod(minutes, 60)
        day_text, bc = _date_part(days)
        text = f"{day_text} {hour:02d}:{minute:02d}:{second:02d}"
        if fraction:
            text += f".{fraction:06d}".rstrip("0")
        text += ("+00" if kind == "timestamptz" else "") + (" BC" if bc else "")
    return PgDateTime(text, micros, kind)


# ---- the codecs (asyncpg's "tuple" format: the integer on the wire)


def decode_date(wire: tuple[int]) -> date | PgDateTime:
    try:
        return EPOCH_DATE + timedelta(wire[0])
    except OverflowError:
        return date_text(wire[0])


def decode_timestamp(wire: tuple[int]) -> datetime | PgDateTime:
    try:
        return EPOCH + timedelta(0, 0, wire[0])
    except OverflowError:
        return timestamp_text(wire[0], "timestamp")


def decode_timestamptz(wire: tuple[int]) -> datetime | PgDateTime:
    try:
        return EPOCH_UTC + timedelta(0, 0, wire[0])
    except OverflowError:
        return timestamp_text(wire[0], "timestamptz")


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _own_ticks(value: PgDateTime, kind: Kind) -> tuple[int]:
    if value.kind != kind:
        raise TypeError(f"a {value.kind} value ({value}) cannot be used as {kind}")
    return (value.ticks,)


def encode_date(value: date | PgDateTime) -> tuple[int]:
    if isinstance(value, PgDateTime):
        return _own_ticks(value, "date")
    if isinstance(value, datetime):
        value = value.date()
    return ((value - EPOCH_DATE).days,)


def encode_timestamp(value: datetime | date | PgDateTime) -> tuple[int]:
    if isinstance(value, PgDateTime):
        return _own_ticks(value, "timestamp")
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        raise TypeError("a timestamp without time zone needs a naive datetime")
    return (_micros(value - EPOCH),)


def encode_timestamptz(value: datetime | date | PgDateTime) -> tuple[int]:
    """Exact for every aware datetime, even one whose UTC time is outside years 1-9999.

    Unlike asyncpg's own codecs, datetime.max and datetime.min are those very moments, not
    infinity: infinity decodes to PgDateTime("infinity") and encodes back from it."""
    if isinstance(value, PgDateTime):
        return _own_ticks(value, "timestamptz")
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    offset = value.utcoffset()
    if offset is None:  # naive: local time, as asyncpg does
        offset = value.astimezone().utcoffset() or timedelta(0)
    return (_micros(value.replace(tzinfo=None) - EPOCH) - _micros(offset),)


# ---- reading the text back (keyset cursors carry it)

_TEXT = re.compile(
    r"(?P<y>\d{4,7})-(?P<m>\d\d)-(?P<d>\d\d)"
    r"(?: (?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)(?:\.(?P<f>\d{1,6}))?(?P<tz>\+00)?)?"
    r"(?P<bc> BC)?"
)


def parse_text(text: str, kind: Kind) -> PgDateTime:
    """The value of a text that `date_text` / `timestamp_text` wrote; ValueError if it is not
    one, or is outside the range PostgreSQL accepts."""
    if text in ("infinity", "-infinity"):
        top = DATE_INFINITY if kind == "date" else TIME_INFINITY
        return PgDateTime(text, top if text == "infinity" else -top - 1, kind)
    match = _TEXT.fullmatch(text)
    if match is None or (match["H"] is None) != (kind == "date"):
        raise ValueError(text)
    if (match["tz"] is not None) != (kind == "timestamptz"):
        raise ValueError(text)
    year, month, day = int(match["y"]), int(match["m"]), int(match["d"])
    if match["bc"]:
        year = 1 - year
        if year > 0:  # "0000-... BC" does not exist
            raise ValueError(text)
    days = _days(year, month, day)
    if _civil(days) != (year, month, day):
        raise ValueError(text)
    if kind == "date":
        if not DATE_MIN <= days < DATE_END:
            raise ValueError(text)
        return date_text(days)
    hour, minute, second = int(match["H"]), int(match["M"]), int(match["S"])
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(text)
    fraction = int((match["f"] or "").ljust(6, "0"))
    micros = days * DAY_US + ((hour * 60 + minute) * 60 + second) * 1_000_000 + fraction
    if not TIME_MIN <= micros < TIME_END:
        raise ValueError(text)
    return timestamp_text(micros, kind)
