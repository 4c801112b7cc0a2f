"""Every route, every parameter, hostile values: never a 500, never unescaped HTML.

Walks admin.app.routes() like tests/route_walk.py (new routes are covered automatically) and
sends each one query parameters (GET) or form fields (POST, DELETE; with a valid CSRF token)
named after everything the code and the templates read, with values drawn from a strategy
rich in NUL, lone surrogates, huge and odd numbers, dates at the edges of time, long text,
SQL and HTML metacharacters and forged keyset cursors. Deterministic and bounded.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from admin import audit
from admin.app import routes
from admin.declarations import DECLARATIONS
from admin.live.events import STATUSES
from admin.staff import account
from tests.conftest import LoggedIn, create_staff
from tests.resource_helpers import ORDER_SORTS, USER_SORTS
from tests.route_walk import methods_of, walk

ROOT = Path(__file__).resolve().parent.parent
# /events streams until the client leaves; its parameters are the live feed's own tests'
STREAMING = {"/events"}
# ends the session the rest of the run needs; covered anonymously
SESSION_ENDING = {"/logout"}
MARKER = "<x-fuzz"

# ---- which names to send: what the code reads and the templates submit, plus the documented


def _collected_names() -> set[str]:
    names: set[str] = set()
    for template in (ROOT / "templates").rglob("*.html"):
        names |= set(re.findall(r'name="([a-z_]+)"', template.read_text()))
    code_reads = re.compile(
        r'(?:params|query_params|form|fields)\.get(?:list)?\(\s*"([a-z_]+)"'
        r'|text_field\(\s*form,\s*"([a-z_]+)"|parse_date\(\s*params,\s*"([a-z_]+)"'
    )
    for module in (ROOT / "admin").rglob("*.py"):
        for groups in code_reads.findall(module.read_text()):
            names |= {g for g in groups if g}
    names |= set(audit.FILTER_COLUMNS)
    for declared in DECLARATIONS:
        names |= {f.param for f in declared.filters or ()} | set(declared.form_columns or ())
    names |= {account.CURRENT, account.NEW, account.CONFIRM}
    return names - {"csrf_token", "viewport", "file"}


DOCUMENTED = {
    "q", "active", "status", "sort", "dir", "limit", "after", "before", "from", "to",
    "count", "exact", "username", "email", "full_name", "is_active", "total", "version",
    "ids", "all_matching", "action", "confirm", "mode", "role", "password", "scope",
    "value", "field", "user", "user_id", "created_from", "created_to", "next", "raw",
}  # fmt: skip
NAMES = sorted(_collected_names() | DOCUMENTED)

# ---- values

SORT_KEYS = sorted(set(USER_SORTS) | set(ORDER_SORTS))
HOSTILE = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\x1b[31m", "\u202e", "\ufeff", "\t\n",
    "9" * 30, "-1", "0", "-0", "1e999999", "-1e999999", "NaN", "sNaN", "infinity", "-Infinity",
    "1.5", "²", "١٢", "0x10", "1_000", "12,5",
    "0000-01-01", "0001-01-01", "0001-01-01T00:00:00+05:00", "9999-12-31",
    "9999-12-31T23:59:59-12:00", "10000-01-01", "2024-02-30", "20000-01-01 00:00:00+00",
    "0044-03-15 BC", "true", "false", "yes", "all", "on",
    "'; DROP TABLE users; --", "%' OR '1'='1", "\\", "%_", '"><x-fuzz>', "<x-fuzz onerror=1>",
    "{{7*7}}", "a" * 5000, "é" * 300, "😀" * 50,
    "eyJ4IjoxfQ", "====", "AAAA", "WyJpZCIsMSwxXQ", "/\\evil.example", "//evil.example/x",
]  # fmt: skip
PLAUSIBLE: dict[str, list[str]] = {
    "sort": SORT_KEYS,
    "dir": ["asc", "desc"],
    "status": list(STATUSES),
    "value": list(STATUSES),
    "active": ["true", "false"],
    "action": ["activate", "deactivate", "delete"],
    "confirm": ["yes"],
    "scope": ["all"],
    "field": ["username", "email", "full_name"],
    "role": ["staff", "admin"],
    "version": ["1", "2"],
    "ids": ["1000", "1001"],
    "user": ["1000"],
    "user_id": ["1000"],
    "limit": ["2", "500"],
    "username": ["fuzzer"],
    "email": ["fuzz@x.io"],
    "is_active": ["on"],
    "total": ["12.50"],
    "mode": ["insert", "upsert"],
    "created_from": ["2024-01-01"],
    "created_to": ["2024-12-31"],
}
JSON_VALUES = st.one_of(
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 10**40, True, None, [], {}, 1.5]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(HOSTILE),
    st.text(max_size=20),
)


@st.composite
def cursors(draw: st.DrawFn, sort: str | None) -> str:
    """base64url JSON shaped like a keyset cursor (or not quite), for `sort` when given."""
    key = sort if sort is not None and draw(st.booleans()) else draw(st.sampled_from(SORT_KEYS))
    shape = draw(st.sampled_from(["cursor", "cursor", "cursor", "short", "long", "other"]))
    payload: object = [key, draw(JSON_VALUES), draw(JSON_VALUES)]
    if shape == "cursor":
        payload = [key, draw(JSON_VALUES), draw(st.integers())]
    elif shape == "short":
        payload = [key, draw(JSON_VALUES)]
    elif shape == "long":
        payload = [key, 1, 1, 1]
    elif shape == "other":
        payload = draw(JSON_VALUES)
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def values_for(name: str, sort: str | None) -> st.SearchStrategy[str]:
    options = [st.sampled_from(HOSTILE), st.text(max_size=30), st.integers().map(str)]
    if name in PLAUSIBLE:
        options.append(st.sampled_from(PLAUSIBLE[name]))
    if name in ("after", "before"):
        options += [cursors(sort), cursors(sort)]
    return st.one_of(options)


# 1000 and 1001 are the seeded user and order ids, 2 the staff member the admin may change
PLAUSIBLE_PATH = ["1000", "1001", "2"]
PATH_VALUES = ["0", "-1", "9" * 30, "²", "\x00", "abc", "1e3", "😀", "\ud800", "1.0", " 1"]


def encode(text: str) -> str:
    """Percent-escapes of the UTF-8 bytes (lone surrogates included, as a hostile client can)."""
    return quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe="")


@st.composite
def fields(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Either a few names with any values, or every plausible field with a plausible value
    and one to three of them (or others) hostile: that reaches past the first check."""
    if draw(st.booleans()):
        names = draw(st.lists(st.sampled_from(NAMES), max_size=8))
        sort = draw(st.sampled_from(SORT_KEYS)) if "sort" in names else None
        return [(n, sort if n == "sort" and sort else draw(values_for(n, sort))) for n in names]
    chosen = {n: draw(st.sampled_from(v)) for n, v in PLAUSIBLE.items()}
    for name in draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3)):
        chosen[name] = draw(values_for(name, chosen["sort"]))
    return list(chosen.items())


@st.composite
def requests(draw: st.DrawFn, path: str, method: str) -> tuple[str, str, bytes | None, bool]:
    """(url, content type, body, htmx) for one call of `method path`."""
    ids = st.one_of(st.sampled_from(PLAUSIBLE_PATH), st.sampled_from(PATH_VALUES))
    url = re.sub(r"\{[^}]+\}", lambda _: encode(draw(ids)), path)
    encoded = "&".join(f"{quote(n)}={encode(v)}" for n, v in draw(fields()))
    htmx = draw(st.booleans())
    if method == "GET":
        return (f"{url}?{encoded}" if encoded else url), "", None, htmx
    return url, "application/x-www-form-urlencoded", encoded.encode("ascii"), htmx


# the engine's routes, fuzzed on declared tables of each shape (the route walker covers the
# access rules of every table)
FUZZED_TABLES = ("users", "orders", "order_items")


def targets(*, logged_in: bool) -> Iterator[tuple[str, str]]:
    for path, route in walk(routes()):
        if not isinstance(route, Route) or path in STREAMING:
            continue
        if logged_in and path in SESSION_ENDING:
            continue
        for method in methods_of(route):
            for table in FUZZED_TABLES if "{resource}" in path else ("",):
                yield path.replace("{resource}", table), method


async def send(
    http: httpx.AsyncClient, csrf: str, method: str, request: tuple[str, str, bytes | None, bool]
) -> httpx.Response:
    url, content_type, body, htmx = request
    headers = {"HX-Request": "true"} if htmx else {}
    if method != "GET":
        headers |= {"X-CSRF-Token": csrf} if csrf else {}
        headers["content-type"] = content_type
        prefix = f"csrf_token={encode(csrf)}" if csrf else ""
        body = prefix.encode() + (b"&" + body if body and prefix else body or b"")
    return await http.request(method, url, content=body, headers=headers)


async def check_every_route(
    http: httpx.AsyncClient, csrf: str, data: st.DataObject, *, logged_in: bool
) -> None:
    problems = []
    for path, method in targets(logged_in=logged_in):
        request = data.draw(requests(path, method), label=f"{method} {path}")
        try:
            response = await send(http, csrf, method, request)
        except Exception as exc:  # the app raised: a 500 behind a real server
            problems.append(f"{method} {request[0][:300]!r}: raised {exc!r}"[:1000])
            continue
        if response.status_code >= 500:
            problems.append(f"{method} {request[0][:300]!r}: {response.status_code}")
        if MARKER in response.text:
            problems.append(f"{method} {request[0][:300]!r}: unescaped markup in the response")
    assert not problems, "\n".join(problems)


FUZZ = settings(
    derandomize=True,
    max_examples=25,
    deadline=None,
    database=None,
    # every request of a failing example is listed in the assertion; shrinking such a long
    # example takes minutes and adds little
    phases=[Phase.explicit, Phase.generate],
    # one example requests every route of every fuzzed table: it is large by design, and
    # grows with each route the panel gains
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


@pytest.fixture
async def seeded(conn) -> int:  # type: ignore[no-untyped-def]
    """Rows for the plausible ids (1000, 1001) and a staff member the admin may change."""
    await conn.execute(
        "INSERT INTO users (id, username, email, created_at) VALUES"
        " (1000, 'fuzz-one', 'one@x.io', 'infinity'), (1001, 'fuzz-two', 'two@x.io', now())"
    )
    await conn.execute(
        "INSERT INTO orders (id, user_id, total, created_at) VALUES"
        " (1000, 1000, 'NaN', '20000-01-01'), (1001, 1001, 1.5, '0044-03-15 BC')"
    )
    return await create_staff(conn, "fuzz-victim", "staff")


@pytest.fixture
async def anonymous_csrf(client: httpx.AsyncClient) -> str:
    page = await client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    return match.group(1) if match else ""


@FUZZ
@given(data=st.data())
async def test_every_route_as_admin(
    admin_client: LoggedIn, seeded: int, data: st.DataObject
) -> None:
    # the admin's own account is never a target: its session must last the whole run
    assert str(seeded) in PLAUSIBLE_PATH and str(admin_client.staff_id) not in PLAUSIBLE_PATH
    await check_every_route(admin_client.http, admin_client.csrf, data, logged_in=True)


@FUZZ
@given(data=st.data())
async def test_every_route_anonymous(
    client: httpx.AsyncClient, anonymous_csrf: str, seeded: int, data: st.DataObject
) -> None:
    await check_every_route(client, anonymous_csrf, data, logged_in=False)
