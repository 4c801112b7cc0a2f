"""GET /: the dashboard, rendered complete on the server; live updates come over /events.
GET /live/chart: the orders chart alone for another window (last hour, day or week)."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin import db, replica
from admin.display import timefmt
from admin.live import events, order_stats
from admin.live import runtime as live
from admin.live import view as live_view
from admin.live.order_feed import status_filter
from admin.web.htmx import render
from admin.web.templating import templates

FEED_SIZE = 50


def chart_range(request: Request) -> order_stats.Range:
    name = request.query_params.get("range", "").strip() or "hour"
    window = order_stats.RANGES.get(name)
    if window is None:
        choices = ", ".join(order_stats.RANGES)
        raise HTTPException(400, f"Unknown chart range {name[:40]!r}: use one of {choices}.")
    return window


async def dashboard(request: Request) -> Response:
    status = status_filter(request)
    window = chart_range(request)
    hub = live.running_hub(request.app)
    # Show only what the hub has released, so resuming after the newest shown id can
    # neither skip an event still in flight nor repeat one.
    upto = hub.watermark if hub is not None else None
    async with db.connection(request) as conn:
        if upto is None:
            upto = await events.max_id(conn)
        # the feed from the primary: the stream resumes after `upto`, so a replica that has
        # not replayed every event up to it would lose those events for good
        feed = await events.recent(conn, upto=upto, status=status, limit=FEED_SIZE)
    async with replica.read_connection(request) as reader:
        counters = await order_stats.today(reader, request.app.state.settings.shop_time_zone)
        buckets = await order_stats.per_bucket(reader, window)
    context = {
        "feed": feed,
        "after": upto,
        "status": status or "",
        "statuses": events.STATUSES,
        "counters": counters,
        "chart": live_view.chart(buckets, window),
        "ranges": order_stats.RANGES.values(),
        **reader_zone(request),
    }
    return render(request, "dashboard.html", "dashboard.html", context)


def reader_zone(request: Request) -> dict[str, object]:
    """The reader's zone for the dashboard's script, which names the times of the shared
    feed and chart (rendered in UTC for every reader) in it; none for a reader in UTC."""
    member = getattr(request.state, "staff", None)
    name = getattr(member, "time_zone", timefmt.DEFAULT_ZONE)
    where = timefmt.zone(name)
    if where is UTC:
        return {"time_zone": None, "zone_labels": {}}
    return {"time_zone": name, "zone_labels": timefmt.zone_labels(where, datetime.now(UTC))}


async def chart(request: Request) -> Response:
    window = chart_range(request)
    async with replica.read_connection(request) as reader:
        buckets = await order_stats.per_bucket(reader, window)
    context = {"chart": live_view.chart(buckets, window)}
    return templates.TemplateResponse(request, "_chart.html", context)
