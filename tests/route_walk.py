"""Walks an app's whole route table and reports every route whose access rule is missing
or not enforced. Used by tests/test_route_rules.py; new routes are covered automatically."""

from __future__ import annotations

import re
from collections.abc import Iterator

import asyncpg
import httpx
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from admin.access import Access
from admin.resources.model import Table
from tests.snapshot import snapshot

PUBLIC_PATHS = {"/login", "/healthz"}
# a key that parses for each kind of primary key column (the permission check comes first)
SAMPLE_KEYS = {
    "integer": "1",
    "text": "x",
    "uuid": "00000000-0000-0000-0000-000000000001",
    "date": "2000-01-01",
}
STATIC_MOUNT = "/static"
PARAM = re.compile(r"\{[^}]+\}")
SAMPLE_VALUE = "1"


def walk(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """(full path, route) for every route, descending into mounts (except static files)."""
    for item in routes:
        path = prefix + getattr(item, "path", "")
        if isinstance(item, Mount):
            if path == STATIC_MOUNT:
                continue
            yield from walk(list(item.routes), path)
        else:
            yield path, item


def sample_path(path: str) -> str:
    return PARAM.sub(SAMPLE_VALUE, path)


def methods_of(route: Route) -> list[str]:
    return sorted(m for m in (route.methods or {"GET"}) if m != "HEAD")


def declared_access(route: BaseRoute) -> Access | None:
    return getattr(getattr(route, "endpoint", None), "access", None)


def undeclared_routes(app: Starlette) -> list[str]:
    """Routes that do not declare an access rule through admin.access.route()."""
    problems = []
    for path, item in walk(list(app.routes)):
        if not isinstance(item, Route):
            problems.append(f"{path}: {type(item).__name__} is not built with access.route()")
        elif declared_access(item) is None:
            problems.append(f"{path}: no access rule declared")
    return problems


def resource_urls(app: Starlette, path: str) -> list[tuple[str, Table]]:
    """A resource route's path for every table the registry serves, with that table."""
    registry = app.state.registry
    found = []
    for table in registry.tables.values():
        key = ",".join(SAMPLE_KEYS.get(c.kind.value, "1") for c in table.primary_key) or "1"
        url = path.replace("{resource}", table.url.lstrip("/")).replace("{key}", key)
        found.append((url.replace("{field}", "status"), table))
    return found


async def access_problems(app: Starlette, conn: asyncpg.Connection) -> list[str]:
    """Everything wrong with the route table; an empty list means every rule holds.

    Requests go through `app` itself: anonymously, as a logged-in member of role staff, and
    (for the per-table permissions of resource routes) as an admin.
    """
    from tests.conftest import create_staff, log_in

    await create_staff(conn, "route-walker", "staff")
    await create_staff(conn, "route-walker-admin", "admin")
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as anonymous,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as staff,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as admin,
    ):
        staff_csrf = await log_in(staff, "route-walker")
        admin_csrf = await log_in(admin, "route-walker-admin")
        problems = await _problems(app, conn, anonymous, staff, staff_csrf)
        return problems + await _resource_problems(app, conn, staff, staff_csrf, admin, admin_csrf)


async def _resource_problems(
    app: Starlette,
    conn: asyncpg.Connection,
    staff: httpx.AsyncClient,
    staff_csrf: str,
    admin: httpx.AsyncClient,
    admin_csrf: str,
) -> list[str]:
    """Every table's routes refuse (403, nothing written) what each role may not do."""
    problems: list[str] = []
    before = await snapshot(conn)
    for path, item in walk(list(app.routes)):
        permission = getattr(getattr(item, "endpoint", None), "permission", None)
        if not isinstance(item, Route) or permission is None:
            continue
        for url, table in resource_urls(app, path):
            for method in methods_of(item):
                for role, http, csrf in (
                    ("staff", staff, staff_csrf),
                    ("admin", admin, admin_csrf),
                ):
                    if table.allows(role, permission):
                        continue
                    found = await _staff_problems(http, csrf, method, url)
                    problems += [f"{p} (as {role}, {permission.value})" for p in found]
    if await snapshot(conn) != before:
        problems.append("refused resource requests wrote to the database")
    return problems


async def _problems(
    app: Starlette,
    conn: asyncpg.Connection,
    anonymous: httpx.AsyncClient,
    staff: httpx.AsyncClient,
    staff_csrf: str,
) -> list[str]:
    problems = undeclared_routes(app)
    before = await snapshot(conn)
    for path, item in walk(list(app.routes)):
        if not isinstance(item, Route):
            continue
        access = declared_access(item)
        url = sample_path(path.replace("{resource}", "users"))
        if access is Access.PUBLIC:
            if path not in PUBLIC_PATHS:
                problems.append(f"{path}: public, but only {sorted(PUBLIC_PATHS)} may be")
            continue
        for method in methods_of(item):
            problems += await _anonymous_problems(anonymous, method, url)
            if access is Access.ADMIN or access is None:
                problems += await _staff_problems(staff, staff_csrf, method, url)
    if await snapshot(conn) != before:
        problems.append("refused requests wrote to the database")
    return problems


async def _anonymous_problems(http: httpx.AsyncClient, method: str, url: str) -> list[str]:
    problems = []
    plain = await http.request(method, url)
    location = plain.headers.get("location", "")
    if plain.status_code != 303 or not location.startswith("/login?next="):
        problems.append(f"{method} {url}: anonymous got {plain.status_code} {location!r}")
    htmx = await http.request(method, url, headers={"HX-Request": "true"})
    target = htmx.headers.get("hx-redirect", "")
    if htmx.status_code != 200 or not target.startswith("/login?next=") or htmx.content:
        problems.append(f"{method} {url}: anonymous htmx got {htmx.status_code} {target!r}")
    return problems


async def _staff_problems(http: httpx.AsyncClient, csrf: str, method: str, url: str) -> list[str]:
    kwargs = {}
    if method != "GET":
        kwargs = {"data": {"csrf_token": csrf}, "headers": {"X-CSRF-Token": csrf}}
    response = await http.request(method, url, **kwargs)
    if response.status_code != 403:
        return [f"{method} {url}: staff role got {response.status_code}, expected 403"]
    return []
