"""Rendering for the live dashboard: feed items, counters and chart as HTML and SSE frames."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sse_starlette import ServerSentEvent

from admin.live.events import OrderEvent
from admin.live.order_stats import HOUR, Counters, MinuteCount, Range
from admin.web.templating import templates

CHART_WIDTH = 640
CHART_HEIGHT = 220
# room for the axes' tick labels and titles, in the same user units
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 12, 44
CHART_GAP = 1


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    minute: datetime
    orders: int
    # what hovering the bar says, e.g. "14:00 to 15:00 UTC: 312 orders (5.2 a minute)"
    label: str


@dataclass(frozen=True)
class Tick:
    at: float
    text: str
    # the moment an x tick names, for the dashboard's script to name in the reader's zone
    moment: datetime | None = None


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    peak: int
    total: int
    window: Range
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    # the first bar's start; bar i starts window.minutes * i later
    first: datetime | None = None
    # ticks and labels name the weekday too (a week's quarter days)
    with_day: bool = False
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    left: int = LEFT
    top: int = TOP
    bottom: float = CHART_HEIGHT - BOTTOM
    right: float = CHART_WIDTH - RIGHT


def _nice(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten at or above `value` (at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _with_day(window: Range) -> bool:
    return window.minutes >= 24 * 60 / 4


def _when(moment: datetime, window: Range) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%a %H:%M" if _with_day(window) else "%H:%M")


def _bar_label(start: datetime, orders: int, window: Range) -> str:
    noun = "order" if orders == 1 else "orders"
    if window.minutes == 1:
        return f"{_when(start, window)} UTC: {orders} {noun}"
    end = start + timedelta(minutes=window.minutes)
    rate = _number(round(orders / window.minutes, 1))
    return (
        f"{_when(start, window)} to {_when(end, window)} UTC: {orders:,} {noun} ({rate} a minute)"
    )


def chart(minutes: Sequence[MinuteCount], window: Range = HOUR) -> Chart:
    """Bar geometry in SVG user units: orders per minute (a bucket's average) against time,
    the y axis up to a round number at or above the tallest bar."""
    peak = max((m.orders for m in minutes), default=0)
    top_rate = _nice(peak / window.minutes)
    plot_w = CHART_WIDTH - LEFT - RIGHT
    plot_h = CHART_HEIGHT - TOP - BOTTOM
    base = CHART_HEIGHT - BOTTOM
    slot = plot_w / max(len(minutes), 1)
    bars = []
    for i, m in enumerate(minutes):
        height = plot_h * (m.orders / window.minutes) / top_rate
        bars.append(
            Bar(
                x=round(LEFT + i * slot, 2),
                y=round(base - height, 2),
                width=round(max(slot - CHART_GAP, 0.5), 2),
                height=round(height, 2),
                minute=m.minute,
                orders=m.orders,
                label=_bar_label(m.minute, m.orders, window),
            )
        )
    y_ticks = [
        Tick(at=round(base - plot_h * f, 2), text=_number(top_rate * f)) for f in (0, 0.5, 1)
    ]
    marks = sorted({0, len(minutes) // 4, len(minutes) // 2, 3 * len(minutes) // 4})
    x_ticks = [
        Tick(
            at=round(LEFT + i * slot, 2),
            text=_when(minutes[i].minute, window),
            moment=minutes[i].minute,
        )
        for i in marks
        if i < len(minutes)
    ]
    return Chart(
        bars=bars,
        peak=peak,
        total=sum(m.orders for m in minutes),
        window=window,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        first=minutes[0].minute if minutes else None,
        with_day=_with_day(window),
    )


def feed_item_html(event: OrderEvent) -> str:
    return templates.get_template("_feed_item.html").render(event=event)


def counters_html(counters: Counters) -> str:
    return templates.get_template("_counters.html").render(counters=counters)


def chart_html(minutes: Sequence[MinuteCount], window: Range = HOUR) -> str:
    return templates.get_template("_chart.html").render(chart=chart(minutes, window))


def order_frame(event: OrderEvent) -> bytes:
    """The SSE frame of one event, rendered once per process however many clients get it."""
    if event.encoded is None:
        event.encoded = ServerSentEvent(
            data=feed_item_html(event), event="order", id=str(event.id)
        ).encode()
    return event.encoded


def order_frames(events: Iterable[OrderEvent], status: str | None) -> bytes:
    return b"".join(order_frame(e) for e in events if status is None or e.status == status)


def stats_frames(counters: Counters, minutes: Sequence[MinuteCount]) -> bytes:
    # no id: these must not move the client's Last-Event-ID
    return (
        ServerSentEvent(data=counters_html(counters), event="counters").encode()
        + ServerSentEvent(data=chart_html(minutes), event="chart").encode()
    )
