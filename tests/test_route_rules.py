"""Every route declares its access rule, and the rule holds (the whole route table)."""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.routing import Route

from admin.access import Access, route
from admin.app import create_app
from tests.route_walk import access_problems, undeclared_routes


async def test_every_route_declares_and_enforces_its_access(app, conn):
    problems = await access_problems(app, conn)
    assert problems == []


async def test_the_route_table_has_admin_and_staff_routes(app):
    rules = {
        getattr(r, "path", ""): getattr(getattr(r, "endpoint", None), "access", None)
        for r in app.routes
    }
    assert rules["/staff"] is Access.ADMIN
    assert rules["/audit"] is Access.ADMIN
    assert rules["/account"] is Access.STAFF
    assert rules["/login"] is Access.PUBLIC


async def _bare(request):  # type: ignore[no-untyped-def]
    return PlainTextResponse("open to anyone")


async def test_a_route_without_a_rule_is_reported(settings, pool, conn):
    app = create_app(settings, pool=pool)
    # first: the resource routes (/{resource}/{key}) would answer for it otherwise
    app.router.routes.insert(0, Route("/bare/{item_id:int}", _bare, methods=["GET", "POST"]))
    assert undeclared_routes(app) == ["/bare/{item_id:int}: no access rule declared"]
    problems = await access_problems(app, conn)
    assert "/bare/{item_id:int}: no access rule declared" in problems
    assert any(p.startswith("GET /bare/1: anonymous got 200") for p in problems)


async def test_an_unexpected_public_route_is_reported(settings, pool, conn):
    app = create_app(settings, pool=pool)
    app.router.routes.append(route("/open", _bare, access=Access.PUBLIC))
    problems = await access_problems(app, conn)
    assert problems == ["/open: public, but only ['/healthz', '/login'] may be"]
