"""How a value is shown, one renderer per kind: list cells and record pages alike.

Renderers are plain functions returning escaped HTML, chosen once per column (a list page
renders hundreds of cells; a Jinja macro call per cell would cost several times more). Each
escapes what it shows: text with html.escape, numbers, ISO times and URL-safe keys as they are.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from markupsafe import Markup

from admin.display import money, timefmt
from admin.resources import keys, values
from admin.resources.model import Column, Table
from admin.resources.tables import Kind

NULL_HTML = '<span class="null">—</span>'
NULL = Markup('<span class="null">—</span>')
LIST_TEXT_MAX = 200
LIST_JSON_MAX = 80
_CSS_WORD = re.compile(r"[^a-z0-9-]+")

# (value, row, zone) -> escaped HTML. Plain str, not Markup: a list page joins hundreds of
# these, and a Markup per cell cost more than the cell; `render` marks the result safe where a
# template takes it.
Renderer = Callable[[Any, Any, tzinfo], str]


def _text_html(text: str) -> str:
    return html.escape(text, quote=False)


def _attribute(text: str) -> str:
    return html.escape(text, quote=True)


def amount(value: Decimal) -> str:
    if not value.is_finite():
        return "NaN" if value.is_nan() else ("-Infinity" if value.is_signed() else "Infinity")
    return f"{value:,.2f}"


def moment(value: Any, zone: tzinfo) -> str:
    """A timestamptz in `zone`, with the zone named (its abbreviation, else its offset)."""
    return timefmt.local_text(value, zone)


def _text(limit: int | None) -> Renderer:
    def render(value: Any, row: Any, zone: tzinfo) -> str:
        text = str(value)
        if limit is not None and len(text) > limit:
            return f'<span title="{_attribute(text)}">{_text_html(text[:limit])}…</span>'
        return _text_html(text)

    return render


def _badge(value: Any, row: Any, zone: tzinfo) -> str:
    text = str(value)
    css = _CSS_WORD.sub("-", text.lower())[:40]
    return f'<span class="badge status-{css}">{_text_html(text)}</span>'


YES = '<span class="badge ok">yes</span>'
NO = '<span class="badge">no</span>'
ACTIVE = '<span class="badge ok">active</span>'
INACTIVE = '<span class="badge">inactive</span>'


def _boolean(value: Any, row: Any, zone: tzinfo) -> str:
    return YES if value else NO


def _active(value: Any, row: Any, zone: tzinfo) -> str:
    return ACTIVE if value else INACTIVE


def _number(value: Any, row: Any, zone: tzinfo) -> str:
    if type(value) is int:
        return str(value)
    if isinstance(value, float):
        return values.form_text_float(value)
    return _text_html(str(value))


def _amount(value: Any, row: Any, zone: tzinfo) -> str:
    return amount(value) if isinstance(value, Decimal) else _text_html(str(value))


def _money(value: Any, row: Any, zone: tzinfo) -> str:
    if isinstance(value, (Decimal, int, float)):
        return _text_html(money.current.text(value))
    return _text_html(str(value))


def _moment(value: Any, row: Any, zone: tzinfo) -> str:
    if zone is UTC and type(value) is datetime and value.tzinfo is not None:
        # the common case, cut from one isoformat(): a third of the general path's cost
        iso = value.astimezone(UTC).isoformat()
        return f'<time datetime="{iso}">{iso[:10]} {iso[11:16]} UTC</time>'
    return str(timefmt.local_tag(value, zone))


def _plain_time(value: Any, row: Any, zone: tzinfo) -> str:
    if isinstance(value, datetime):
        return _text_html(value.isoformat(" ", "minutes")[:16])
    if isinstance(value, date):
        return value.isoformat()
    return _text_html(str(value))


def _json(limit: int | None) -> Renderer:
    def render(value: Any, row: Any, zone: tzinfo) -> str:
        if limit is None:
            text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
            return f"<pre>{_text_html(text)}</pre>"
        text = json.dumps(value, ensure_ascii=False, default=str)
        if len(text) > limit:
            text = text[:limit] + "…"
        return f"<code>{_text_html(text)}</code>"

    return render


def _array(column: Column) -> Renderer:
    def render(value: Any, row: Any, zone: tzinfo) -> str:
        items = [
            "NULL" if v is None else values.form_text(column.info, [v], zone=zone) for v in value
        ]
        return _text_html(", ".join(items))

    return render


def _size(value: Any, row: Any, zone: tzinfo) -> str:
    return f'<span class="muted">{int(value):,} bytes</span>'


def _reference(column: Column, target: Table | None) -> Renderer:
    alias = column.ref_label_alias

    def render(value: Any, row: Any, zone: tzinfo) -> str:
        label = row[alias] if target is not None and alias in row.keys() else None
        text = str(label) if label is not None else str(value)
        if target is None or not target.keyed:
            return _text_html(text)
        href = f"{target.url}/{keys.encode([values.key_text(column.info, value)])}"
        return f'<a href="{href}">{_text_html(text)}</a>'

    return render


def renderer(column: Column, target: Table | None, *, full: bool = False) -> Renderer:
    """The renderer for `column` (`full`: a record page, nothing shortened)."""
    if column.reference is not None:
        return _reference(column, target)
    declared = column.field.cell
    if declared == "badge" or (declared is None and column.choices):
        return _badge
    if declared == "active":
        return _active
    if declared == "amount":
        return _amount
    if declared == "money":
        return _money
    kind = column.kind
    if kind is Kind.BOOLEAN:
        return _boolean
    if kind is Kind.NUMERIC and column.info.numeric_scale == 2:
        return _amount
    if kind in (Kind.INTEGER, Kind.NUMERIC, Kind.FLOAT, Kind.UUID):
        return _number
    if kind is Kind.TIMESTAMPTZ:
        return _moment
    if kind in (Kind.TIMESTAMP, Kind.DATE):
        return _plain_time
    if kind is Kind.JSON:
        return _json(None if full else LIST_JSON_MAX)
    if kind is Kind.ARRAY:
        return _array(column)
    if kind in (Kind.BYTEA, Kind.UNKNOWN):
        return _size
    return _text(None if full else LIST_TEXT_MAX)


def render(render_fn: Renderer, value: Any, row: Any, zone: tzinfo = UTC) -> Markup:
    """A cell for a template: the renderer's HTML, marked safe (it escapes what it shows)."""
    if value is None:
        return NULL
    return Markup(render_fn(value, row, zone))  # noqa: S704
