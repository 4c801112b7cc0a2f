"""GET /: the dashboard."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from admin.htmx import render


async def dashboard(request: Request) -> Response:
    return render(request, "dashboard.html", "dashboard.html", {})
