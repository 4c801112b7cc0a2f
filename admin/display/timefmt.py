"""Times as the reader sees them: in their own zone, with the zone named.

A staff member picks an IANA zone (staff.time_zone); pages show an aware datetime in it as
`2026-11-30 14:05 CET`, or with the UTC offset (`UTC+5:30`) where the tz database has no
abbreviation for the zone, only digits. Anything that is not an aware datetime is shown as
it is: naive timestamps (no zone is known), dates, and the PostgreSQL values Python cannot
hold (pg_values.PgDateTime: infinity, BC, past year 9999).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from markupsafe import Markup, escape

DEFAULT_ZONE = "UTC"
MINUTES = "%Y-%m-%d %H:%M"
SECONDS = "%Y-%m-%d %H:%M:%S"
# Where the tz database puts its canonical zones; the names outside them are legacy aliases
# (US/Eastern, GB, EST5EDT ...), still accepted when posted but not offered in the list.
REGIONS = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)
MAX_ZONE_LENGTH = 64
# "localtime" is the host's own zone (whatever the server happens to run in) and "Factory"
# a placeholder that names itself "-00": neither is a place a person is in
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})

# Every ZoneInfo a page has asked for, by name: a dict lookup instead of ZoneInfo's own cache
# on every value of a list page. Names come from the staff table, which holds valid names only.
_ZONES: dict[str, tzinfo] = {DEFAULT_ZONE: UTC}


@functools.cache
def valid_zones() -> frozenset[str]:
    """Every zone name a staff member may choose (read from the tz database once)."""
    return frozenset(available_timezones() - _NOT_ZONES) | {DEFAULT_ZONE}


@functools.cache
def zone_groups() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The zones offered in the form: UTC first, then (region, sorted names) by region."""
    by_region: dict[str, list[str]] = {region: [] for region in REGIONS}
    for name in valid_zones():
        region = name.split("/", 1)[0]
        if region in by_region and "/" in name:
            by_region[region].append(name)
    groups = [(DEFAULT_ZONE, (DEFAULT_ZONE,))]
    groups += [(region, tuple(sorted(names))) for region, names in by_region.items() if names]
    return tuple(groups)


def is_offered(name: str) -> bool:
    return any(name in names for _, names in zone_groups())


def zone_problem(name: str) -> str | None:
    """Why `name` cannot be a staff member's zone, or None."""
    if not name:
        return "Choose a time zone."
    if len(name) > MAX_ZONE_LENGTH or name not in valid_zones():
        shown = name if len(name) <= MAX_ZONE_LENGTH else name[:MAX_ZONE_LENGTH] + "…"
        return f"{shown!r} is not a time zone this panel knows; choose one from the list."
    return None


def zone(name: str) -> tzinfo:
    """The tzinfo of a zone name; UTC for a name the tz database no longer has."""
    found = _ZONES.get(name)
    if found is None:
        try:
            found = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            # shown as UTC and labelled so: right, if not in the zone the member chose
            found = UTC
        _ZONES[name] = found
    return found


def zone_label(moment: datetime) -> str:
    """`CET`, `IST`, `UTC`; `UTC+5:30` or `UTC-3` where the tz database has only digits."""
    name = moment.tzname()
    if name and name[0] not in "+-":
        return name
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    hours, minutes = divmod(minutes, 60)
    return f"UTC{sign}{hours}:{minutes:02d}" if minutes else f"UTC{sign}{hours}"


def zone_labels(where: tzinfo, around: datetime, days: int = 8) -> dict[int, str]:
    """zone_label's answers for `where` from `days` before `around` to a day after it, by
    UTC offset in minutes: a browser knows a zone's offsets but not the tz database's
    abbreviations, and a script naming those moments says what the pages say."""
    labels: dict[int, str] = {}
    for hours in range(-24, days * 24 + 1, 6):
        local = (around - timedelta(hours=hours)).astimezone(where)
        offset = int((local.utcoffset() or timedelta(0)).total_seconds()) // 60
        labels.setdefault(offset, zone_label(local))
    return labels


def _clock(iso: str, moment: datetime, fmt: str) -> str:
    # cut from the ISO text for the two usual formats: a third of strftime's cost
    if fmt == MINUTES:
        return f"{iso[:10]} {iso[11:16]}"
    if fmt == SECONDS:
        return f"{iso[:10]} {iso[11:19]}"
    return moment.strftime(fmt)


def _shown(value: datetime | date | str | None, where: tzinfo, fmt: str) -> tuple[str, str]:
    """(text, ISO 8601 of the same moment; '' when there is none to give)."""
    if value is None or isinstance(value, str):  # str: pg_values.PgDateTime
        return value or "", ""
    if not isinstance(value, datetime):
        iso = value.isoformat()
        return iso, iso
    if value.tzinfo is None:
        iso = value.isoformat()
        return _clock(iso, value, fmt), iso
    try:
        local = value.astimezone(where)
    except OverflowError:  # within a day of year 1 or 9999: shown in UTC, named so
        local = value.astimezone(UTC)
    iso = local.isoformat()
    return f"{_clock(iso, local, fmt)} {zone_label(local)}", iso


def local_text(value: datetime | date | str | None, where: tzinfo, fmt: str = MINUTES) -> str:
    """`value` in the zone `where`, formatted with `fmt` and followed by the zone's label."""
    return _shown(value, where, fmt)[0]


def local_tag(value: datetime | date | str | None, where: tzinfo, fmt: str = MINUTES) -> Markup:
    """local_text inside `<time datetime="ISO 8601, with the zone's offset">`."""
    text, iso = _shown(value, where, fmt)
    if not iso:  # None, or text PostgreSQL wrote: no ISO value to give
        return escape(text)
    # a tenth of the cost of Markup.format, which list pages would pay per value
    return Markup(f'<time datetime="{escape(iso)}">{escape(text)}</time>')  # noqa: S704


def reader_zone(context: Mapping[str, object], name: str | None = None) -> tzinfo:
    """The zone `name`, else the zone of the staff member a template renders for, else UTC
    (pages for nobody logged in, and fragments rendered once for every reader)."""
    if name is not None:
        return zone(name)
    member = context.get("current_staff")
    return UTC if member is None else zone(getattr(member, "time_zone", DEFAULT_ZONE))
