"""The one Jinja2 environment: autoescaping on, shared context for every page."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from admin.display import money, timefmt, wording
from admin.resources import cells, editing, fragments, rows
from admin.resources.model import OFFSET_CAP
from admin.web import navigation
from admin.web.paths import TEMPLATES_DIR


def _page_context(request: Request) -> dict[str, Any]:
    session = getattr(request.state, "session", None)
    return {
        "current_staff": getattr(request.state, "staff", None),
        "csrf_token": session.csrf_token if session else "",
        # called by base.html only, so a fragment never swallows a message meant for a page
        "get_flashes": session.pop_flashes if session else list,
        # set by replica.read_connection: the page says its figures may lag a little
        "read_from_replica": getattr(request.state, "read_from_replica", False),
    }


MINUTES = "%Y-%m-%d %H:%M"


def _datetime(value: datetime | str | None, fmt: str = MINUTES) -> str:
    if not value:
        return ""
    if fmt == MINUTES and type(value) is datetime:
        # the same text as strftime at half the cost: list pages format two per row
        return value.isoformat(" ", "minutes")[:16]
    if isinstance(value, str):  # pg_values.PgDateTime: infinity, BC, past year 9999
        return value
    return value.strftime(fmt)


@pass_context
def _localtime(
    context: Context, value: datetime | str | None, fmt: str = MINUTES, zone: str | None = None
) -> str:
    """`{{ at | localtime }}`: in the reader's zone (or `zone`), the zone named."""
    return timefmt.local_text(value, timefmt.reader_zone(context, zone), fmt)


@pass_context
def _localtime_tag(
    context: Context, value: datetime | str | None, fmt: str = MINUTES, zone: str | None = None
) -> Markup:
    """The same inside `<time datetime="...">`."""
    return timefmt.local_tag(value, timefmt.reader_zone(context, zone), fmt)


def _amount(value: Decimal | float | int | None, grouping: bool = True) -> str:
    """Two decimals, with thousands separators unless `grouping` is off; NaN and infinities
    (numeric columns hold them) as PostgreSQL writes them."""
    if value is None:
        return ""
    if isinstance(value, Decimal) and not value.is_finite():
        if value.is_nan():
            return "NaN"
        return "-Infinity" if value.is_signed() else "Infinity"
    return f"{value:,.2f}" if grouping else f"{value:.2f}"


def _money(value: Decimal | float | int | None) -> str:
    """An amount with the panel's currency and thousands separators."""
    return "" if value is None else money.current.text(value)


@pass_context
def _live_position(context: Context) -> int | None:
    """Where the change stream stood when this page was read: the browser resumes from
    here, so a change made while the page loads is not missed."""
    live = getattr(context["request"].app.state, "live", None)
    return None if live is None else live.changes.watermark


@pass_context
def _static_url(context: Context, path: str) -> str:
    """The URL of a file under /static (below the app's root path, when mounted under one).

    url_for('static', ...) would try every route of the table in turn for each asset.
    """
    request: Request = context["request"]
    return f"{request.scope.get('root_path', '')}/static/{quote(path)}"


templates = Jinja2Templates(directory=str(TEMPLATES_DIR), context_processors=[_page_context])
templates.env.filters["datetime"] = _datetime
templates.env.filters["localtime"] = _localtime
templates.env.filters["localtime_tag"] = _localtime_tag
templates.env.filters["amount"] = _amount
templates.env.filters["plural"] = wording.plural
templates.env.filters["money"] = _money
templates.env.filters["money_change"] = money.change
templates.env.filters["counted"] = wording.counted
# jsonb numbers past Python's integer limit decode as Decimal (db._json_loads); tojson shows
# them as text rather than failing the page
templates.env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": str}
templates.env.globals["static_url"] = _static_url
templates.env.globals["live_position"] = _live_position
templates.env.globals["cell"] = cells.render
templates.env.globals["cell_moment"] = cells.moment
templates.env.globals["list_rows"] = rows.list_rows
templates.env.globals["shown_fields"] = editing.shown_fields
templates.env.globals["field_hint"] = editing.hint
templates.env.globals["main_nav"] = navigation.main_nav
templates.env.globals["shared"] = fragments.shared
templates.env.globals["offset_cap"] = OFFSET_CAP
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True
# Templates change only with a deploy (which restarts the process); without this Jinja stats
# every template file on every render, once per {% include %} of a row.
templates.env.auto_reload = False
