"""Every feature through nginx, two instances, PgBouncer and a replica; a 1M-row CSV;
read-your-writes against a delayed replica; /metrics scraped and parsed."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.topology.conftest import (
    URL,
    Admin,
    DelayedReplica,
    env,
    https_client,
    instance_ports,
)

pytestmark = pytest.mark.skipif(not URL, reason="needs the topology of deploy/ci/topology.sh")

REPLICA_NOTE = "Read from a replica"
# how long a replica released from its delay may take to replay and be seen again
CATCH_UP_S = 60.0
# the metrics label of a record page: the route template, the same for every table
RECORD_ROUTE = "/{resource}/{key}"


def scrape(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


async def instance_metrics(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    token = env("TOPOLOGY_METRICS_TOKEN")
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200
    return scrape(response.text)


def count(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(
        value
        for sample_labels, value in found.get(name, [])
        if all(sample_labels.get(k) == v for k, v in labels.items())
    )


async def test_forms_conflicts_and_sessions_work_on_either_instance(admin: Admin, primary):
    before = [
        count(await instance_metrics(port), "admin_http_requests_total", route=RECORD_ROUTE)
        for port in instance_ports()
    ]
    name = f"topo_{uuid.uuid4().hex[:8]}"
    created = await admin.post(
        "/users", {"username": name, "email": f"{name}@example.com", "full_name": "Topo"}
    )
    assert created.status_code == 303, created.text
    row = await primary.fetchrow("SELECT * FROM users WHERE username = $1", name)
    form = {"username": name, "email": row["email"], "full_name": "First", "is_active": "true"}
    for _ in range(4):  # the session and its CSRF token hold on every instance
        page = await admin.http.get(f"/users/{row['id']}")
        assert page.status_code == 200 and name in page.text
    saved = await admin.post(f"/users/{row['id']}", {**form, "version": str(row["version"])})
    assert saved.status_code == 303
    stale = await admin.post(
        f"/users/{row['id']}", {**form, "full_name": "Second", "version": str(row["version"])}
    )
    assert stale.status_code == 409
    forged = await admin.http.post(f"/users/{row['id']}/delete", data={"csrf_token": "x" * 40})
    assert forged.status_code == 403
    listed = await admin.http.get("/users", params={"q": name})
    assert listed.status_code == 200 and name in listed.text
    after = [
        count(await instance_metrics(port), "admin_http_requests_total", route=RECORD_ROUTE)
        for port in instance_ports()
    ]
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)


async def test_login_throttling_sees_the_client_address_nginx_saw(admin: Admin, primary):
    await admin.http.get("/")
    ip = await primary.fetchval(
        "SELECT ip FROM audit_log WHERE action = 'login' ORDER BY id DESC LIMIT 1"
    )
    assert str(ip).startswith("127.0.0.1")


async def test_own_write_is_read_back_while_the_replica_lags(
    admin: Admin,
    primary: asyncpg.Connection,
    replica_conn: asyncpg.Connection,
    delayed_replica: DelayedReplica,
):
    name = f"ryw_{uuid.uuid4().hex[:8]}"
    created = await admin.post(
        "/users", {"username": name, "email": f"{name}@example.com", "full_name": "RYW"}
    )
    assert created.status_code == 303
    user_id = await primary.fetchval("SELECT id FROM users WHERE username = $1", name)
    # the replica has not applied it yet ...
    assert await replica_conn.fetchval("SELECT count(*) FROM users WHERE id = $1", user_id) == 0
    # ... yet this staff member's next pages show it, on either instance
    for _ in range(2):
        page = await admin.http.get(
            "/audit", params={"resource": "users", "resource_id": str(user_id)}
        )
        assert page.status_code == 200
        assert f"/users/{user_id}" in page.text or name in page.text
        assert REPLICA_NOTE not in page.text
    # once the replica has replayed the write, reads go back to it
    await delayed_replica.catch_up()
    deadline = time.monotonic() + CATCH_UP_S
    while True:
        page = await admin.http.get("/audit", params={"resource": "users"})
        if REPLICA_NOTE in page.text or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert REPLICA_NOTE in page.text
    assert name in page.text or str(user_id) in page.text


@pytest.mark.slow
async def test_a_million_rows_import_and_export_through_nginx(admin: Admin, primary):
    tag = uuid.uuid4().hex[:6]
    rows = 1_000_000
    lines = ["username,email,full_name"]
    lines.extend(f"m{tag}_{n},m{tag}_{n}@example.com,Person {n}" for n in range(rows))
    body = ("\n".join(lines) + "\n").encode()
    imported = await admin.http.post(
        "/users/import?mode=insert",
        content=body,
        headers={
            "Content-Type": "text/csv",
            "X-CSRF-Token": admin.csrf,
            "Accept": "application/json",
        },
        timeout=900,
    )
    assert imported.status_code == 200, imported.text[:500]
    assert json.loads(imported.text)["rows"] == rows
    exported_lines = 0
    async with admin.http.stream(
        "POST",
        "/users/export.csv",
        params={"q": f"m{tag}_"},
        headers={"X-CSRF-Token": admin.csrf},
        timeout=900,
    ) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_bytes():
            exported_lines += chunk.count(b"\n")
    assert exported_lines == rows + 1  # and the header


async def test_metrics_scraped_and_parsed_through_nginx():
    token = env("TOPOLOGY_METRICS_TOKEN")
    async with https_client() as http:
        refused = await http.get("/metrics")
        assert refused.status_code in {303, 401, 403}
        response = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    found = scrape(response.text)
    for name in (
        "admin_http_requests_total",
        "admin_http_request_duration_seconds_bucket",
        "admin_db_pool_size",
        "admin_db_pool_in_use",
        "admin_db_pool_waiting",
        "admin_db_pool_acquire_timeouts_total",
        "admin_sse_clients",
        "admin_listener_reconnects_total",
        "admin_login_failures_total",
        "admin_login_throttled_total",
        "admin_db_replica_usable",
    ):
        assert name in found, name
    assert count(found, "admin_db_pool_size") >= 1
