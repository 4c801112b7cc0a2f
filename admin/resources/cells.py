"""How a value is shown, one renderer per kind: list cells and record pages alike.

Renderers are plain functions returning escaped markup, chosen once per column (a list page
renders hundreds of cells; a Jinja macro call per cell would cost several times more).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from markupsafe import Markup, escape

from admin import timefmt
from admin.resources import keys, values
from admin.resources.model import Column, Table
from admin.resources.tables import Kind

NULL = Markup('<span class="null">—</span>')
LIST_TEXT_MAX = 200
LIST_JSON_MAX = 80
_CSS_WORD = re.compile(r"[^a-z0-9-]+")

Renderer = Callable[[Any, Any, tzinfo], Markup]  # (value, row, zone) -> markup


def _built(html: str) -> Markup:
    """Markup assembled here from escaped text, numbers, ISO times and URL-safe keys (never
    raw input): f-strings, because Markup.format costs several times more per cell."""
    return Markup(html)  # noqa: S704


def amount(value: Decimal) -> str:
    if not value.is_finite():
        return "NaN" if value.is_nan() else ("-Infinity" if value.is_signed() else "Infinity")
    return f"{value:,.2f}"


def moment(value: Any, zone: tzinfo) -> str:
    """A timestamptz in `zone`, with the zone named (its abbreviation, else its offset)."""
    return timefmt.local_text(value, zone)


def _text(limit: int | None) -> Renderer:
    def render(value: Any, row: Any, zone: tzinfo) -> Markup:
        text = str(value)
        if limit is not None and len(text) > limit:
            return _built(f'<span title="{escape(text)}">{escape(text[:limit])}…</span>')
        return escape(text)

    return render


def _badge(value: Any, row: Any, zone: tzinfo) -> Markup:
    text = str(value)
    css = _CSS_WORD.sub("-", text.lower())[:40]
    return _built(f'<span class="badge status-{css}">{escape(text)}</span>')


YES = Markup('<span class="badge ok">yes</span>')
NO = Markup('<span class="badge">no</span>')
ACTIVE = Markup('<span class="badge ok">active</span>')
INACTIVE = Markup('<span class="badge">inactive</span>')


def _boolean(value: Any, row: Any, zone: tzinfo) -> Markup:
    return YES if value else NO


def _active(value: Any, row: Any, zone: tzinfo) -> Markup:
    return ACTIVE if value else INACTIVE


def _number(value: Any, row: Any, zone: tzinfo) -> Markup:
    if type(value) is int:
        return _built(str(value))
    if isinstance(value, float):
        return escape(values.form_text_float(value))
    return escape(str(value))


def _amount(value: Any, row: Any, zone: tzinfo) -> Markup:
    return escape(amount(value)) if isinstance(value, Decimal) else escape(str(value))


def _moment(value: Any, row: Any, zone: tzinfo) -> Markup:
    return timefmt.local_tag(value, zone)


def _plain_time(value: Any, row: Any, zone: tzinfo) -> Markup:
    if isinstance(value, datetime):
        return escape(value.isoformat(" ", "minutes")[:16])
    if isinstance(value, date):
        return escape(value.isoformat())
    return escape(str(value))


def _json(limit: int | None) -> Renderer:
    def render(value: Any, row: Any, zone: tzinfo) -> Markup:
        if limit is None:
            text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
            return _built(f"<pre>{escape(text)}</pre>")
        text = json.dumps(value, ensure_ascii=False, default=str)
        if len(text) > limit:
            text = text[:limit] + "…"
        return _built(f"<code>{escape(text)}</code>")

    return render


def _array(column: Column) -> Renderer:
    def render(value: Any, row: Any, zone: tzinfo) -> Markup:
        items = [
            "NULL" if v is None else values.form_text(column.info, [v], zone=zone) for v in value
        ]
        return escape(", ".join(items))

    return render


def _size(value: Any, row: Any, zone: tzinfo) -> Markup:
    return _built(f'<span class="muted">{int(value):,} bytes</span>')


def _reference(column: Column, target: Table | None) -> Renderer:
    alias = column.ref_label_alias

    def render(value: Any, row: Any, zone: tzinfo) -> Markup:
        label = row[alias] if target is not None and alias in row.keys() else None
        text = str(label) if label is not None else str(value)
        if target is None or not target.keyed:
            return escape(text)
        href = f"{target.url}/{keys.encode([values.key_text(column.info, value)])}"
        return _built(f'<a href="{href}">{escape(text)}</a>')

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
    if value is None:
        return NULL
    return render_fn(value, row, zone)
