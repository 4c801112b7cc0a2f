"""GET /: the dashboard, rendered complete on the server; live updates come over /events."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from admin import db, events, live, live_view, order_stats, replica
from admin.htmx import render
from admin.sse import status_filter

FEED_SIZE = 50


async def dashboard(request: Request) -> Response:
    status = status_filter(request)
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
        counters = await order_stats.today(reader)
        minutes = await order_stats.per_minute(reader)
    context = {
        "feed": feed,
        "after": upto,
        "status": status or "",
        "statuses": events.STATUSES,
        "counters": counters,
        "chart": live_view.chart(minutes),
    }
    return render(request, "dashboard.html", "dashboard.html", context)
