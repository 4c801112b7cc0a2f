"""The main navigation, rendered once per catalog read, role and current section rather
than on every page: it loops over every table the role may open."""

from __future__ import annotations

from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.requests import Request

ADMIN_LINKS = (("/staff", "Staff"), ("/audit", "Audit log"))
MAX_CACHED = 512

# (role, is_admin, current hrefs) -> (the tables it was rendered from, the markup)
_rendered: dict[tuple[str, bool, frozenset[str]], tuple[object, Markup]] = {}


def current_hrefs(path: str, tables: list[Any], is_admin: bool) -> frozenset[str]:
    """Which links mark the page as theirs (`aria-current`)."""
    found = {"/"} if path == "/" else set()
    found.update(t.url for t in tables if path == t.url or path.startswith(t.url + "/"))
    if is_admin:
        found.update(href for href, _ in ADMIN_LINKS if path.startswith(href))
    return frozenset(found)


@pass_context
def main_nav(context: Context) -> Markup:
    request: Request = context["request"]
    staff = getattr(request.state, "staff", None)
    found = getattr(request.app.state, "registry", None)
    if staff is None:
        return Markup("")
    tables = found.visible_to(staff.role) if found is not None else []
    source = found.tables if found is not None else None
    is_admin = bool(staff.is_admin)
    key = (staff.role, is_admin, current_hrefs(request.scope["path"], tables, is_admin))
    hit = _rendered.get(key)
    if hit is not None and hit[0] is source:
        return hit[1]
    markup = Markup(  # noqa: S704 - an autoescaped template's output
        context.environment.get_template("_nav.html").render(
            tables=tables, current=key[2], is_admin=is_admin, admin_links=ADMIN_LINKS
        )
    )
    if len(_rendered) >= MAX_CACHED:
        _rendered.clear()
    _rendered[key] = (source, markup)
    return markup
