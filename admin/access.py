"""Who may call what: the one place that wraps every route with its access rule.

Every route in app.py is built with `route()`, which records the rule on the endpoint;
a test walks the route table and fails on any route without one.
"""

from __future__ import annotations

import enum
import functools
import hmac
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import quote, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from admin import db
from admin.resources.registry import registry
from admin.settings import Settings
from admin.staff import cache as staff_cache
from admin.staff import sessions
from admin.staff import table as staff_table
from admin.staff.table import StaffMember
from admin.web import bodies, forms
from admin.web.htmx import is_htmx

Endpoint = Callable[[Request], Awaitable[Response]]

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class Access(enum.Enum):
    PUBLIC = "public"  # no login needed (login page, health check)
    STAFF = "staff"  # any active staff member
    ADMIN = "admin"  # role admin only


class CsrfFrom(enum.Enum):
    FORM = "form"  # header, or the csrf_token field of a urlencoded/multipart form
    ENDPOINT = "endpoint"  # header, else the endpoint checks it itself (streamed uploads)


def current_staff(request: Request) -> StaffMember:
    """The logged-in staff member (routes behind STAFF or ADMIN always have one)."""
    member: StaffMember | None = request.state.staff
    assert member is not None
    return member


def csrf_token(request: Request) -> str:
    return request.state.session.csrf_token


def csrf_matches(request: Request, candidate: str | None) -> bool:
    expected = request.state.session.csrf_token
    return bool(candidate) and hmac.compare_digest(str(candidate), expected)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _same_origin(request: Request) -> bool:
    """Origin (or, failing that, Referer) must name this host when the browser sends one."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return True
    if source == "null":
        return False
    parts = urlsplit(source)
    host = request.headers.get("host", "")
    return parts.netloc == host and parts.scheme in {"http", "https"}


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if is_htmx(request):
        # the page behind the HTMX request is what the user should come back to
        current = request.headers.get("hx-current-url")
        if current:
            current_parts = urlsplit(current)
            target = current_parts.path + (f"?{current_parts.query}" if current_parts.query else "")
    url = "/login?next=" + quote(target, safe="/")
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


async def _csrf_ok(request: Request, csrf_from: CsrfFrom) -> bool:
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return csrf_matches(request, header)
    if csrf_from is CsrfFrom.ENDPOINT:
        request.state.csrf_pending = True
        return True
    if forms.media_type(request) in {forms.URLENCODED, forms.MULTIPART}:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return isinstance(value, str) and csrf_matches(request, value)
    return False


async def _load_staff(request: Request, session: sessions.Session) -> StaffMember | None:
    if session.staff_id is None:
        return None
    cache = staff_cache.staff_cache(request)
    tables = registry(request)
    # a write always asks the database: only pages are served from what was remembered
    reuse = cache is not None and request.method not in UNSAFE_METHODS
    member = cache.get(session.staff_id, session.session_id) if reuse and cache else None
    if member is None or tables.due:
        generation = cache.generation if cache is not None else 0
        async with db.connection(request) as conn:
            member = await staff_table.get_for_session(conn, session.staff_id, session.session_id)
            if member is not None:
                # the navigation lists the tables: keep the catalog current (one cheap check
                # every few seconds)
                await tables.current(conn)
        if member is not None and cache is not None:
            cache.put(session.staff_id, session.session_id, member, generation)
    if member is None or not member.is_active or member.session_version != session.staff_version:
        session.log_out()
        session.flash("Your session has ended. Please log in again.", "warning")
        return None
    return member


def guard(
    endpoint: Endpoint,
    access: Access,
    csrf_from: CsrfFrom = CsrfFrom.FORM,
    *,
    uses_session: bool = True,
) -> Endpoint:
    """Wrap `endpoint` with session loading, the login and role check, and the CSRF check.

    An unsafe request's origin is checked and its body read (within its limits) before a
    pooled connection is taken, so a slow or refused body never holds one. The checks that
    follow run in the same order for everyone: login, role, encoding, CSRF token.
    """

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        if not uses_session:
            return await endpoint(request)
        settings: Settings = request.app.state.settings
        session = sessions.load(request, settings)
        request.state.session = session
        request.state.staff = None
        request.state.csrf_pending = False
        try:
            if session.staff_id is None:
                if access is Access.PUBLIC and request.method in UNSAFE_METHODS:
                    await _receive(request, csrf_from, settings)
                response = await _checked(request, endpoint, access, csrf_from)
            elif request.method not in UNSAFE_METHODS:
                async with db.request_connection(request):
                    request.state.staff = await _load_staff(request, session)
                    response = await _checked(request, endpoint, access, csrf_from)
            elif csrf_from is CsrfFrom.ENDPOINT:
                await _receive(request, csrf_from, settings)
                # the endpoint streams the body and takes a connection when it needs one
                async with db.request_connection(request):
                    request.state.staff = await _load_staff(request, session)
                response = await _checked(request, endpoint, access, csrf_from)
            else:
                await _receive(request, csrf_from, settings)
                async with db.request_connection(request):
                    request.state.staff = await _load_staff(request, session)
                    response = await _checked(request, endpoint, access, csrf_from)
        finally:
            cache = staff_cache.staff_cache(request)
            if cache is not None and request.method in UNSAFE_METHODS:
                # this process's own writes (log out, roles, passwords) count from the next
                # request on, without waiting for their notification
                cache.forget()
        sessions.save(response, session, settings)
        return response

    guarded.access = access  # type: ignore[attr-defined]
    return guarded


async def _receive(request: Request, csrf_from: CsrfFrom, settings: Settings) -> None:
    """Refuse a cross-site request, then read a form body whole within its limits.

    A streamed upload (CsrfFrom.ENDPOINT) is left unread: its endpoint reads it.
    """
    if not _same_origin(request):
        raise HTTPException(403, "Cross-site request refused.")
    if csrf_from is CsrfFrom.FORM:
        logged_in = request.state.session.staff_id is not None
        limits = bodies.form_limits(settings, logged_in=logged_in)
        try:
            await bodies.read_body(request, limits)
        except bodies.BodyRefused as refused:
            raise bodies.http_error(refused) from None


async def _checked(
    request: Request, endpoint: Endpoint, access: Access, csrf_from: CsrfFrom
) -> Response:
    member: StaffMember | None = request.state.staff
    if access is not Access.PUBLIC and member is None:
        return login_redirect(request)
    if access is Access.ADMIN and member is not None and not member.is_admin:
        raise HTTPException(403, "This page is for admins only.")
    if request.method in UNSAFE_METHODS:
        if csrf_from is CsrfFrom.FORM:
            forms.check_encoding(request, await request.body())  # read by _receive
        if not await _csrf_ok(request, csrf_from):
            raise HTTPException(
                403, "The form has expired or its security token is missing. Reload and retry."
            )
    return await endpoint(request)


def route(
    path: str,
    endpoint: Endpoint,
    *,
    access: Access,
    methods: Sequence[str] = ("GET",),
    name: str | None = None,
    csrf_from: CsrfFrom = CsrfFrom.FORM,
    uses_session: bool = True,
) -> Route:
    """A Starlette route whose endpoint enforces `access` (and CSRF on unsafe methods).

    `uses_session=False` is for public endpoints that must answer without touching the
    session or the pool (the health check, which has to work when the pool is exhausted).
    """
    if not uses_session and access is not Access.PUBLIC:
        raise ValueError("only public routes may skip the session")
    return Route(
        path,
        guard(endpoint, access, csrf_from, uses_session=uses_session),
        methods=list(methods),
        name=name,
    )
