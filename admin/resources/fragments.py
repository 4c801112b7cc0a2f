"""Parts of a list page that depend only on the table, the reader's permissions and the
list's state (search, filters, sort, columns, page size): the filter form, the table's
head, the live bar. Every page of the same list, and every reader with the same
permissions, shares one rendering of each instead of rendering it again (they cost as
much as the rest of the page's markup together, see bench/list_render.py)."""

from __future__ import annotations

from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

# a search's text is part of the key: distinct searches are bounded by this, not kept
MAX_SHARED = 1024

_rendered: dict[tuple[Any, ...], tuple[object, Markup]] = {}


@pass_context
def shared(context: Context, name: str) -> Markup:
    """`name` rendered with the page's context, or the same rendering made for an earlier
    page of the same list, table (as read from the catalog) and permissions."""
    table, query, can = context["table"], context["query"], context["can"]
    key = (name, table.slug, query.state_key, tuple(can.items()))
    hit = _rendered.get(key)
    if hit is not None and hit[0] is table:
        return hit[1]
    markup = Markup(  # noqa: S704 - an autoescaped template's output
        context.environment.get_template(name).render(context.get_all())
    )
    if len(_rendered) >= MAX_SHARED:
        _rendered.clear()
    _rendered[key] = (table, markup)
    return markup
