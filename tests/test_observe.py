"""Request ids, one JSON log line per request, and /metrics (admins or the bearer token)."""

from __future__ import annotations

import dataclasses
import json
import logging

import httpx
from prometheus_client.parser import text_string_to_metric_families

from admin.app import create_app
from tests.conftest import LoggedIn

TOKEN = "metrics-token-long-enough"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_request_id_is_returned_taken_from_the_client_or_made(client: httpx.AsyncClient):
    given = await client.get("/login", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/login", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32


async def test_json_log_line_per_request(settings, pool, caplog, staff_client: LoggedIn):
    app = create_app(dataclasses.replace(settings, log_json=True), pool=pool)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        http.cookies = staff_client.http.cookies
        with caplog.at_level(logging.INFO, logger="admin.request"):
            response = await http.get("/users/42", headers={"X-Request-ID": "req-1"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "admin.request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "req-1"
    assert line["staff_id"] == staff_client.staff_id
    assert (line["method"], line["route"], line["status"]) == ("GET", "/{resource}/{key}", 404)
    assert line["bytes"] == len(response.content)
    assert line["duration_ms"] >= 0
    assert set(line) >= {"time", "request_id", "staff_id", "method", "route", "status", "bytes"}


async def test_metrics_need_an_admin_or_the_token(
    settings, pool, admin_client: LoggedIn, staff_client: LoggedIn
):
    anonymous = await staff_client.http.get("/logout")  # any request, to count one
    assert anonymous.status_code in {404, 405}
    assert (await staff_client.get("/metrics")).status_code == 403
    page = await admin_client.get("/metrics")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain")
    found = samples(page.text)
    assert (
        "admin_http_requests_total",
        (("method", "GET"), ("route", "/"), ("status", "200")),
    ) in found

    app = create_app(dataclasses.replace(settings, metrics_token=TOKEN), pool=pool)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        refused = await http.get("/metrics", headers={"Authorization": "Bearer wrong-token-here"})
        assert refused.status_code == 303  # no session: the login page, as for any admin page
        scraped = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200
    assert "admin_db_pool_waiting" in scraped.text


async def test_unmatched_paths_share_one_label(admin_client: LoggedIn):
    for number in range(3):
        await admin_client.get(f"/no/such/page/{number}")
    found = samples((await admin_client.get("/metrics")).text)
    routes = {
        dict(labels).get("route") for (name, labels) in found if name == "admin_http_requests_total"
    }
    assert "unmatched" in routes
    assert not any(route and route.startswith("/no/such") for route in routes)


async def test_failed_logins_are_counted(client: httpx.AsyncClient, admin_client: LoggedIn):
    def failures(text: str) -> float:
        return samples(text).get(("admin_login_failures_total", ()), 0.0)

    before = failures((await admin_client.get("/metrics")).text)
    page = await client.get("/login")
    token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    await client.post("/login", data={"username": "boss", "password": "wrong", "csrf_token": token})
    after = failures((await admin_client.get("/metrics")).text)
    assert after == before + 1
