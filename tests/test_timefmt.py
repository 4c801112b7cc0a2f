"""The localtime filters: the reader's zone, named; everything that is not an aware
datetime shown as it is."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from admin import pg_values
from admin.display import timefmt
from admin.web.templating import templates

BERLIN = timefmt.zone("Europe/Berlin")


def render(source: str, member: object = None, **values: object) -> str:
    return templates.env.from_string(source).render(current_staff=member, **values)


def pg_text(text: str) -> pg_values.PgDateTime:
    return pg_values.parse_text(text, "timestamptz")


def reader(zone: str) -> SimpleNamespace:
    return SimpleNamespace(time_zone=zone)


@pytest.mark.parametrize(
    ("moment", "shown"),
    [
        (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "2026-01-15 13:00 CET"),
        (datetime(2026, 7, 15, 12, 0, tzinfo=UTC), "2026-07-15 14:00 CEST"),
        # autumn: 02:30 local happens twice, once in each
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "2026-10-25 02:30 CEST"),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "2026-10-25 02:30 CET"),
        # an aware value in another zone is the same instant
        (datetime(2026, 1, 15, 7, 0, tzinfo=timezone(timedelta(hours=-5))), "2026-01-15 13:00 CET"),
    ],
)
def test_berlin_winter_summer_and_the_hour_that_repeats(moment: datetime, shown: str):
    assert timefmt.local_text(moment, BERLIN) == shown


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        ("UTC", "2026-01-15 12:00 UTC"),
        ("Asia/Kolkata", "2026-01-15 17:30 IST"),
        ("Asia/Dubai", "2026-01-15 16:00 UTC+4"),
        ("Asia/Kathmandu", "2026-01-15 17:45 UTC+5:45"),
        ("America/Sao_Paulo", "2026-01-15 09:00 UTC-3"),
        ("America/St_Johns", "2026-01-15 08:30 NST"),
    ],
)
def test_abbreviation_or_offset(zone: str, shown: str):
    moment = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert render("{{ at | localtime }}", reader(zone), at=moment) == shown


def test_the_filter_reads_the_zone_of_the_member_the_page_is_for():
    moment = datetime(2026, 1, 15, 12, 0, 9, tzinfo=UTC)
    assert render("{{ at | localtime }}", at=moment) == "2026-01-15 12:00 UTC"
    assert render("{{ at | localtime }}", reader("Asia/Tokyo"), at=moment) == (
        "2026-01-15 21:00 JST"
    )
    tokyo = reader("Asia/Tokyo")
    assert render("{{ at | localtime('%H:%M:%S', zone='UTC') }}", tokyo, at=moment) == (
        "12:00:09 UTC"
    )
    assert render("{{ at | localtime('%Y-%m-%d %H:%M:%S') }}", reader("Asia/Tokyo"), at=moment) == (
        "2026-01-15 21:00:09 JST"
    )
    assert render("{{ at | localtime('%d.%m.%Y %H:%M') }}", reader("Asia/Tokyo"), at=moment) == (
        "15.01.2026 21:00 JST"
    )


def test_the_time_tag_carries_the_instant_with_the_readers_offset():
    moment = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert render("{{ at | localtime_tag }}", reader("Europe/Berlin"), at=moment) == (
        '<time datetime="2026-01-15T13:00:00+01:00">2026-01-15 13:00 CET</time>'
    )
    assert render("{{ at | localtime_tag }}", reader("Europe/Berlin"), at=None) == ""


@pytest.mark.parametrize(
    ("value", "text", "tag"),
    [
        # timestamp without time zone: no zone is known, so none is named or assumed
        (datetime(2026, 1, 15, 12, 0), "2026-01-15 12:00", '<time datetime="2026-01-15T12:00:00">'),
        (date(2026, 1, 15), "2026-01-15", '<time datetime="2026-01-15">'),
        (pg_text("infinity"), "infinity", None),
        (pg_text("0044-03-15 12:00:00+00 BC"), "0044-03-15 12:00:00+00 BC", None),
        (pg_text("20000-01-01 00:00:00+00"), "20000-01-01 00:00:00+00", None),
        ("", "", None),
        (None, "", None),
    ],
)
def test_values_without_a_zone_or_outside_python_are_shown_as_they_are(
    value: object, text: str, tag: str | None
):
    member = reader("Asia/Kolkata")
    assert render("{{ v | localtime }}", member, v=value) == text
    tagged = render("{{ v | localtime_tag }}", member, v=value)
    assert tagged == (f"{tag}{text}</time>" if tag else text)


def test_the_last_hours_python_can_hold_fall_back_to_utc_named():
    last = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    assert timefmt.local_text(last, timefmt.zone("Asia/Kolkata")) == "9999-12-31 23:00 UTC"
    first = datetime(1, 1, 1, 1, 0, tzinfo=UTC)
    assert timefmt.local_text(first, timefmt.zone("America/New_York")) == "0001-01-01 01:00 UTC"


def test_zone_names_are_checked_against_the_tz_database():
    assert timefmt.zone_problem("Europe/Berlin") is None
    assert timefmt.zone_problem("UTC") is None
    assert timefmt.zone_problem("US/Eastern") is None  # a legacy alias, still a zone
    assert timefmt.zone_problem("") == "Choose a time zone."
    for bad in ("localtime", "Factory", "europe/berlin", "Europe/Atlantis", "/etc/passwd"):
        assert timefmt.zone_problem(bad), bad


def test_the_offered_zones_are_grouped_and_sorted_with_utc_first():
    groups = timefmt.zone_groups()
    assert groups[0] == ("UTC", ("UTC",))
    regions = [region for region, _ in groups[1:]]
    assert "Europe" in regions and "America" in regions
    for region, names in groups[1:]:
        assert list(names) == sorted(names)
        assert all(name.startswith(region + "/") for name in names)
    assert timefmt.is_offered("Europe/Berlin") and not timefmt.is_offered("US/Eastern")


def test_a_zone_the_tz_database_lost_reads_as_utc_named():
    moment = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert render("{{ at | localtime }}", reader("Gone/Away"), at=moment) == "2026-01-15 12:00 UTC"


def test_a_zones_labels_by_offset_cover_the_week_before_and_a_change_of_clock():
    # Berlin's clocks went back on 2026-10-25: the week before it has both labels
    after_the_change = datetime(2026, 10, 28, 12, tzinfo=UTC)
    assert timefmt.zone_labels(timefmt.zone("Europe/Berlin"), after_the_change) == {
        60: "CET",
        120: "CEST",
    }
    winter = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert timefmt.zone_labels(timefmt.zone("Europe/Berlin"), winter) == {60: "CET"}
    # digits only in the tz database: the offset, as the pages write it
    assert timefmt.zone_labels(timefmt.zone("Asia/Kathmandu"), winter) == {345: "UTC+5:45"}
    assert timefmt.zone_labels(timefmt.zone("America/St_Johns"), winter) == {-210: "NST"}
