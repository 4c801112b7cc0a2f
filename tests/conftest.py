"""Fixtures: one PostgreSQL for the run, a fresh database per test, app and clients."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from admin import db
from admin.app import close_pool, create_app
from admin.settings import Settings
from tests import pg

TEST_SECRET_KEY = "test-secret-key-that-is-long-enough"
STAFF_PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    with pg.server_url() as url:
        yield url


@pytest.fixture(scope="session")
def template_db(server_url: str) -> Iterator[str]:
    name = pg.run(pg.create_template(server_url))
    yield name
    pg.run(pg.drop_database(server_url, name))


@pytest.fixture
def database_url(server_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for this test alone."""
    name = pg.run(pg.create_database(server_url, template_db))
    yield pg.with_database(server_url, name)
    pg.run(pg.drop_database(server_url, name))


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """A brand-new database with no schema at all (for migrations and first runs)."""
    name = pg.run(pg.create_empty_database(server_url))
    yield pg.with_database(server_url, name)
    pg.run(pg.drop_database(server_url, name))


# The app's own connections through a transaction pooler (PgBouncer) in front of the test
# server (the CI topology job sets it): everything the app does goes through the pooler, while
# LISTEN and the tests' own arranging connections go to the server directly.
POOLER_URL = os.environ.get("TEST_POOLER_URL")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Through a pooler, run only the tests whose app connects through it: those built on the
    `settings` fixture. The others start servers of their own or need no app at all: the run
    without a pooler has them, and repeating them here cost CI more time than it has."""
    if not POOLER_URL:
        return
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (kept if "settings" in getattr(item, "fixturenames", ()) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    app_url = database_url
    if POOLER_URL:
        app_url = pg.with_database(POOLER_URL, urlsplit(database_url).path.lstrip("/"))
    return Settings(
        database_url=app_url,
        listen_database_url=database_url,
        data_dir=tmp_path,
        secret_key=TEST_SECRET_KEY,
        pool_min_size=1,
        pool_max_size=4,
        pool_acquire_timeout=2.0,
        database_pooler=bool(POOLER_URL),
    )


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    created = await db.create_pool(settings)
    yield created
    await close_pool(created)  # as the app closes its own: a killed connection is dropped


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection for arranging and checking data directly."""
    async with pool.acquire() as connection:
        yield connection


@pytest.fixture
def app(settings: Settings, pool: asyncpg.Pool):  # type: ignore[no-untyped-def]
    return create_app(settings, pool=pool)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)"')


def csrf_from(html: str) -> str:
    match = CSRF_META.search(html)
    assert match, "page has no csrf-token meta tag"
    return match.group(1)


@dataclass
class LoggedIn:
    """A client logged in as a staff member; `csrf` is its current CSRF token."""

    http: httpx.AsyncClient
    csrf: str
    staff_id: int
    username: str

    async def post(self, url: str, data: dict[str, str] | None = None, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
        return await self.http.post(url, data={"csrf_token": self.csrf, **(data or {})}, **kw)

    async def get(self, url: str, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
        return await self.http.get(url, **kw)


async def create_staff(
    conn: asyncpg.Connection, username: str, role: str = "staff", password: str = STAFF_PASSWORD
) -> int:
    from admin.staff import table as staff

    member = await staff.create(conn, username, password, role)
    return member.id


def client_at(app, ip: str = "127.0.0.1", device_cookie: str | None = None) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    """A client of the in-process app coming from `ip` (and holding a device cookie)."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    if device_cookie:
        http.cookies.set("admin_device", device_cookie)
    return http


async def login_attempt(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """One login form post, with the token of a freshly loaded login page."""
    page = await http.get("/login")
    return await http.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_from(page.text)},
    )


async def log_in(http: httpx.AsyncClient, username: str, password: str = STAFF_PASSWORD) -> str:
    """Log `http` in; returns the CSRF token of the new session."""
    page = await http.get("/login")
    token = csrf_from(page.text)
    response = await http.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    home = await http.get("/")
    assert home.status_code == 200
    return csrf_from(home.text)


async def _logged_in(app, conn: asyncpg.Connection, username: str, role: str) -> LoggedIn:  # type: ignore[no-untyped-def]
    staff_id = await create_staff(conn, username, role)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    token = await log_in(http, username)
    return LoggedIn(http=http, csrf=token, staff_id=staff_id, username=username)


@pytest.fixture
async def staff_client(app, conn: asyncpg.Connection) -> AsyncIterator[LoggedIn]:  # type: ignore[no-untyped-def]
    logged = await _logged_in(app, conn, "clerk", "staff")
    yield logged
    await logged.http.aclose()


@pytest.fixture
async def admin_client(app, conn: asyncpg.Connection) -> AsyncIterator[LoggedIn]:  # type: ignore[no-untyped-def]
    logged = await _logged_in(app, conn, "boss", "admin")
    yield logged
    await logged.http.aclose()
