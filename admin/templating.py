"""The one Jinja2 environment: autoescaping on, shared context for every page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.templating import Jinja2Templates

from admin.paths import TEMPLATES_DIR


def _page_context(request: Request) -> dict[str, Any]:
    session = getattr(request.state, "session", None)
    return {
        "current_staff": getattr(request.state, "staff", None),
        "csrf_token": session.csrf_token if session else "",
        # called by base.html only, so a fragment never swallows a message meant for a page
        "get_flashes": session.pop_flashes if session else list,
    }


def _datetime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.strftime(fmt) if value else ""


templates = Jinja2Templates(directory=str(TEMPLATES_DIR), context_processors=[_page_context])
templates.env.filters["datetime"] = _datetime
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True
# Templates change only with a deploy (which restarts the process); without this Jinja stats
# every template file on every render, once per {% include %} of a row.
templates.env.auto_reload = False
