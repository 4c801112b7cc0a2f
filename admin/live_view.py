"""Rendering for the live dashboard: feed items, counters and chart as HTML and SSE frames."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sse_starlette import ServerSentEvent

from admin.events import OrderEvent
from admin.order_stats import Counters, MinuteCount
from admin.templating import templates

CHART_WIDTH = 600
CHART_HEIGHT = 120
CHART_GAP = 2


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    minute: datetime
    orders: int


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    peak: int
    total: int
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT


def chart(minutes: Sequence[MinuteCount]) -> Chart:
    """Bar geometry in SVG user units; the tallest bar fills the height."""
    peak = max((m.orders for m in minutes), default=0)
    slot = CHART_WIDTH / max(len(minutes), 1)
    bars = []
    for i, m in enumerate(minutes):
        height = 0.0 if peak == 0 else CHART_HEIGHT * m.orders / peak
        bars.append(
            Bar(
                x=round(i * slot, 2),
                y=round(CHART_HEIGHT - height, 2),
                width=round(slot - CHART_GAP, 2),
                height=round(height, 2),
                minute=m.minute,
                orders=m.orders,
            )
        )
    return Chart(bars=bars, peak=peak, total=sum(m.orders for m in minutes))


def feed_item_html(event: OrderEvent) -> str:
    return templates.get_template("_feed_item.html").render(event=event)


def counters_html(counters: Counters) -> str:
    return templates.get_template("_counters.html").render(counters=counters)


def chart_html(minutes: Sequence[MinuteCount]) -> str:
    return templates.get_template("_chart.html").render(chart=chart(minutes))


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
