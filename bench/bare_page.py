"""The reference for bench/list_pages.py: a bare Starlette route rendering a Jinja template.

No database, session, auth or middleware: it renders the same 50 user rows (read once from a
JSON file) into a table padded to the byte size of the real users page.
"""

from __future__ import annotations

import json
import os

from jinja2 import Environment
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

TEMPLATE = """<!doctype html><html><head><title>Users</title></head><body><main>
<table><thead><tr><th>ID</th><th>Username</th><th>Email</th><th>Full name</th><th>Active</th>
<th>Created</th></tr></thead><tbody>
{% for u in rows %}<tr id="user-{{ u.id }}" tabindex="0" data-href="/users/{{ u.id }}">
<td><input type="checkbox" name="ids" value="{{ u.id }}"></td><td><a href="/users/{{ u.id }}">
{{ u.id }}</a></td><td>{{ u.username }}</td><td>{{ u.email }}</td><td>{{ u.full_name }}</td>
<td>{{ "active" if u.is_active else "inactive" }}</td><td>{{ u.created_at }}</td></tr>
{% endfor %}</tbody></table><!-- {{ padding }} --></main></body></html>"""


def create_app() -> Starlette:
    with open(os.environ["BARE_PAGE_DATA"], encoding="utf-8") as handle:
        data = json.load(handle)
    template = Environment(autoescape=True).from_string(TEMPLATE)
    rows = data["rows"]
    unpadded = len(template.render(rows=rows, padding="").encode())
    padding = "x" * max(0, data["size"] - unpadded)

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(template.render(rows=rows, padding=padding))

    return Starlette(routes=[Route("/", page)])
