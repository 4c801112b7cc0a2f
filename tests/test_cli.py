"""The CLI against the test database: migrate, create-staff, demo-data, simulate-orders."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from admin.demo.catalog import CATEGORIES, LEAVES
from admin.demo.commands import load_demo_data
from admin.migrations import available
from admin.staff.passwords import verify_password
from tests.cli import ROOT, cli_env, run_cli
from tests.conftest import TEST_SECRET_KEY


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return cli_env(
        DATABASE_URL=database_url, SECRET_KEY=TEST_SECRET_KEY, ADMIN_DATA_DIR=str(tmp_path)
    )


# ---- configuration errors


async def test_bad_setting_stops_the_cli_with_one_line(env: dict[str, str]):
    result = run_cli("migrate", env={**env, "POOL_MAX_SIZE": "abc"})
    assert result.returncode == 1
    assert result.stderr == "error: POOL_MAX_SIZE must be a whole number, got 'abc'\n"


async def test_database_url_without_secret_key_refuses_to_serve(env: dict[str, str]):
    without_key = {k: v for k, v in env.items() if k != "SECRET_KEY"}
    result = run_cli("serve", "--port", "1", env=without_key, timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith("error: SECRET_KEY is required when DATABASE_URL is set")
    assert "Admin panel:" not in result.stdout


# ---- migrate


async def test_migrate_applies_then_reports_up_to_date(empty_database_url: str, tmp_path: Path):
    env = cli_env(
        DATABASE_URL=empty_database_url, SECRET_KEY=TEST_SECRET_KEY, ADMIN_DATA_DIR=str(tmp_path)
    )
    first = run_cli("migrate", env=env)
    assert first.returncode == 0, first.stderr
    versions = [migration.version for migration in available()]
    assert first.stdout == f"applied: {', '.join(versions)}\n"

    second = run_cli("migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout == "database is up to date\n"


# ---- create-staff


async def test_create_staff_takes_the_password_from_the_environment(
    env: dict[str, str], conn: asyncpg.Connection
):
    result = run_cli(
        "create-staff",
        "Night.Shift",
        "--role",
        "admin",
        env={**env, "ADMIN_PASSWORD": "pw-long-enough"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "created admin 'night.shift'\n"
    row = await conn.fetchrow(
        "SELECT role, password_hash FROM staff WHERE username = 'night.shift'"
    )
    assert row["role"] == "admin"
    assert verify_password(row["password_hash"], "pw-long-enough")
    assert "pw-long-enough" not in row["password_hash"]


async def test_create_staff_duplicate_fails_with_a_message(
    env: dict[str, str], conn: asyncpg.Connection
):
    with_password = {**env, "ADMIN_PASSWORD": "pw-long-enough"}
    assert run_cli("create-staff", "clerk2", env=with_password).returncode == 0
    again = run_cli("create-staff", "clerk2", "--role", "admin", env=with_password)
    assert again.returncode == 1
    assert again.stderr == "error: staff member 'clerk2' already exists\n"
    rows = await conn.fetch("SELECT role FROM staff WHERE username = 'clerk2'")
    assert [row["role"] for row in rows] == ["staff"]


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("no way!", "pw-long-enough", "username must be 3-50 characters"),
        ("ab", "pw-long-enough", "username must be 3-50 characters"),
        ("x" * 51, "pw-long-enough", "username must be 3-50 characters"),
        ("shorty", "short", "password must be at least 10 characters"),
    ],
)
async def test_create_staff_rejects_bad_input_and_writes_nothing(
    env: dict[str, str], conn: asyncpg.Connection, username: str, password: str, message: str
):
    result = run_cli("create-staff", username, env={**env, "ADMIN_PASSWORD": password})
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {message}")
    assert await conn.fetchval("SELECT count(*) FROM staff") == 0


async def test_create_staff_without_password_or_terminal_says_what_to_do(
    env: dict[str, str], conn: asyncpg.Connection
):
    result = run_cli("create-staff", "nopass", env=env)
    assert result.returncode == 1
    assert "set ADMIN_PASSWORD" in result.stderr
    assert await conn.fetchval("SELECT count(*) FROM staff") == 0


async def test_create_staff_rejects_an_unknown_role(env: dict[str, str]):
    result = run_cli("create-staff", "someone", "--role", "root", env=env)
    assert result.returncode == 2
    assert "invalid choice: 'root'" in result.stderr


# ---- demo-data

USERNAME = re.compile(r"[a-z0-9._-]{3,50}")


async def check_demo_rows(conn: asyncpg.Connection) -> None:
    users = await conn.fetch("SELECT * FROM users")
    assert all(USERNAME.fullmatch(user["username"]) for user in users)
    assert len({user["email"].lower() for user in users}) == len(users)
    assert any(not user["full_name"].isascii() for user in users)
    assert all(" " in user["full_name"] for user in users)
    active = sum(user["is_active"] for user in users)
    assert 0.75 * len(users) < active < len(users)
    ages = await conn.fetchrow(
        "SELECT min(created_at) > now() - interval '2 years 1 day' AS recent,"
        " max(created_at) - min(created_at) > interval '200 days' AS spread,"
        " bool_and(updated_at >= created_at) AS ordered FROM users"
    )
    assert ages["recent"] and ages["spread"] and ages["ordered"]

    orders = await conn.fetchrow(
        "SELECT count(DISTINCT status) AS statuses, count(DISTINCT user_id) AS buyers,"
        " bool_and(updated_at >= created_at) AS ordered, min(total) >= 0 AS priced,"
        " bool_and(total = round(total, 2)) AS cents,"
        " max(created_at) - min(created_at) > interval '100 days' AS spread FROM orders"
    )
    assert orders["statuses"] >= 4
    assert orders["buyers"] > 50
    assert orders["ordered"] and orders["priced"] and orders["cents"] and orders["spread"]

    categories = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE parent_id IS NULL) AS tops,"
        " count(*) FILTER (WHERE parent_id IS NOT NULL) AS subs FROM categories"
    )
    assert (categories["tops"], categories["subs"]) == (len(CATEGORIES), len(LEAVES))

    products = await conn.fetchrow(
        """
        SELECT count(*) AS count, count(DISTINCT p.category_id) AS categories,
               count(*) FILTER (WHERE p.category_id IS NOT NULL AND c.parent_id IS NULL) AS tops,
               min(p.price) > 0 AS priced, max(p.price) > 20 * min(p.price) AS spread,
               count(*) FILTER (WHERE p.stock = 0) AS sold_out,
               count(*) FILTER (WHERE p.active) AS active,
               count(DISTINCT p.name) AS names,
               bool_and(p.description <> '') AS described,
               bool_and(p.updated_at >= p.created_at) AS ordered,
               bool_or(NOT p.name ~ '^[ -~]*$') AS unicode
        FROM products p LEFT JOIN categories c ON c.id = p.category_id
        """
    )
    assert products["categories"] > len(LEAVES) // 2
    assert products["tops"] == 0  # filed under subcategories
    assert products["priced"] and products["spread"] and products["described"]
    assert products["ordered"] and products["unicode"]
    assert 0 < products["sold_out"] < products["count"] // 4
    assert 0.8 * products["count"] < products["active"] < products["count"]
    assert products["names"] > products["count"] // 2

    # every order holds 1 to 5 distinct products at their price, and its total is their sum
    baskets = await conn.fetchrow(
        """
        SELECT min(b.lines) AS fewest, max(b.lines) AS most,
               bool_and(b.lines = b.products) AS distinct_products,
               bool_and(b.total = o.total) AS totals, count(*) AS orders,
               bool_and(b.stamped) AS stamped
        FROM orders o
        JOIN LATERAL (
            SELECT count(*) AS lines, count(DISTINCT i.product_id) AS products,
                   coalesce(sum(i.quantity * i.unit_price), 0) AS total,
                   coalesce(bool_and(i.created_at = o.created_at), true) AS stamped
            FROM order_items i WHERE i.order_id = o.id
        ) b ON true
        """
    )
    assert baskets["fewest"] >= 1 and baskets["most"] <= 5
    assert baskets["distinct_products"] and baskets["totals"] and baskets["stamped"]
    items = await conn.fetchrow(
        """
        SELECT bool_and(i.unit_price = p.price) AS priced,
               avg((p.created_at <= i.created_at)::int) AS after_listing,
               count(DISTINCT i.quantity) AS quantities
        FROM order_items i JOIN products p ON p.id = i.product_id
        """
    )
    assert items["priced"] and items["quantities"] >= 3
    assert items["after_listing"] > 0.95


async def test_demo_data_loads_valid_rows_and_appends_on_a_second_run(
    env: dict[str, str], conn: asyncpg.Connection
):
    load = ("demo-data", "--users", "200", "--orders", "300", "--products", "250")
    first = run_cli(*load, env=env)
    assert first.returncode == 0, first.stderr
    assert f"categories: {len(CATEGORIES) + len(LEAVES)} added" in first.stdout
    assert re.search(r"products: 250 rows in [\d.]+ s \([\d,]+ rows/s\)", first.stdout)
    assert re.search(r"users: 200 rows in [\d.]+ s \([\d,]+ rows/s\)", first.stdout)
    assert re.search(r"\norders: 300 rows in [\d.]+ s \([\d,]+ rows/s\)", first.stdout)
    items = int(re.search(r"order_items: (\d+) rows in", first.stdout).group(1))
    assert await conn.fetchval("SELECT count(*) FROM order_items") == items
    assert re.search(rf"done: {750 + items:,} rows in", first.stdout)
    assert await conn.fetchval("SELECT count(*) FROM users") == 200
    assert await conn.fetchval("SELECT count(*) FROM orders") == 300
    assert await conn.fetchval("SELECT count(*) FROM products") == 250
    # the triggers on orders fire for COPY too
    assert await conn.fetchval("SELECT count(*) FROM order_events WHERE kind = 'created'") == 300
    await check_demo_rows(conn)
    first_ids = {row["id"] for row in await conn.fetch("SELECT id FROM users")}

    second = run_cli(*load, env=env)
    assert second.returncode == 0, second.stderr
    assert "categories:" not in second.stdout  # the demo tree is there already
    assert await conn.fetchval("SELECT count(*) FROM users") == 400
    assert await conn.fetchval("SELECT count(*) FROM orders") == 600
    assert await conn.fetchval("SELECT count(*) FROM products") == 500
    assert {row["id"] for row in await conn.fetch("SELECT id FROM users")} > first_ids
    await check_demo_rows(conn)

    # the panel's own inserts continue after the loaded ids instead of colliding with them
    new_id = await conn.fetchval(
        "INSERT INTO users (username, email) VALUES ('after.load', 'after@example.com')"
        " RETURNING id"
    )
    assert new_id > max(await conn.fetchval("SELECT max(id) FROM users WHERE id <> $1", new_id), 0)


async def test_demo_orders_go_to_existing_users_when_ids_have_gaps(
    env: dict[str, str], conn: asyncpg.Connection
):
    assert run_cli("demo-data", "--users", "100", "--orders", "0", env=env).returncode == 0
    await conn.execute("DELETE FROM users WHERE id % 3 = 0")
    remaining = {row["id"] for row in await conn.fetch("SELECT id FROM users")}

    result = run_cli("demo-data", "--users", "0", "--orders", "500", env=env)
    assert result.returncode == 0, result.stderr
    buyers = {row["user_id"] for row in await conn.fetch("SELECT user_id FROM orders")}
    assert buyers <= remaining
    assert len(buyers) > 30


async def test_demo_orders_without_any_user_fail_clearly(
    env: dict[str, str], conn: asyncpg.Connection
):
    result = run_cli("demo-data", "--users", "0", "--orders", "10", env=env)
    assert result.returncode == 1
    assert "no users to place orders for" in result.stderr
    # refused before anything was loaded
    assert await conn.fetchval("SELECT count(*) FROM orders") == 0
    assert await conn.fetchval("SELECT count(*) FROM products") == 0


async def test_demo_orders_without_any_product_fail_clearly(
    env: dict[str, str], conn: asyncpg.Connection
):
    result = run_cli("demo-data", "--users", "5", "--orders", "10", "--products", "0", env=env)
    assert result.returncode == 1
    assert "no products to put in orders: add some with --products N" in result.stderr
    assert await conn.fetchval("SELECT count(*) FROM users") == 0
    assert await conn.fetchval("SELECT count(*) FROM orders") == 0


async def test_demo_items_take_existing_products_at_their_current_price(
    env: dict[str, str], conn: asyncpg.Connection
):
    users_only = ("demo-data", "--users", "20", "--orders", "0", "--products", "0")
    assert run_cli(*users_only, env=env).returncode == 0
    await conn.execute(
        "INSERT INTO products (sku, name, price, created_at)"
        " VALUES ('OWN-1', 'Own product', 12.34, now() - interval '3 years')"
    )
    result = run_cli("demo-data", "--users", "0", "--orders", "50", "--products", "0", env=env)
    assert result.returncode == 0, result.stderr
    assert await conn.fetchval("SELECT count(*) FROM products") == 1
    lines = await conn.fetch("SELECT quantity, unit_price FROM order_items")
    assert len(lines) == 50  # one product: one line per order
    assert {line["unit_price"] for line in lines} == {Decimal("12.34")}
    assert await conn.fetchval(
        "SELECT bool_and(o.total = i.quantity * i.unit_price)"
        " FROM orders o JOIN order_items i ON i.order_id = o.id"
    )


async def test_demo_data_rejects_a_negative_count(env: dict[str, str]):
    result = run_cli("demo-data", "--users", "-5", env=env)
    assert result.returncode == 2
    assert "must not be negative" in result.stderr


async def test_large_load_rebuilds_exactly_the_same_indexes(
    database_url: str, conn: asyncpg.Connection, capsys: pytest.CaptureFixture[str]
):
    definitions = (
        "SELECT indexname, indexdef FROM pg_indexes"
        " WHERE tablename IN ('users', 'orders', 'products', 'order_items')"
        " ORDER BY indexname"
    )
    before = [tuple(row) for row in await conn.fetch(definitions)]
    await load_demo_data(database_url, users=300, orders=400, products=200, rebuild_min_rows=1)
    out = capsys.readouterr().out
    for table in ("users", "products", "orders", "order_items"):
        assert f"{table}: rebuilt" in out
    assert [tuple(row) for row in await conn.fetch(definitions)] == before
    assert await conn.fetchval("SELECT count(*) FROM users") == 300
    assert await conn.fetchval("SELECT count(*) FROM orders") == 400
    assert await conn.fetchval("SELECT count(*) FROM products") == 200
    await check_demo_rows(conn)
    # the unique indexes are back and enforced
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(
            "INSERT INTO users (username, email) SELECT 'dupe.email', upper(email) FROM users"
            " LIMIT 1"
        )


# ---- simulate-orders


async def test_simulate_orders_without_users_suggests_demo_data(env: dict[str, str]):
    result = run_cli("simulate-orders", "--rate", "5", env=env, timeout=60)
    assert result.returncode == 1
    assert "no users" in result.stderr
    assert "python -m admin demo-data" in result.stderr


def _lines(process: subprocess.Popen[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """The process's stdout lines as they come (a thread reads them, so waits can time out)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    return lines, reader


@pytest.mark.slow
async def test_simulate_orders_creates_and_advances_orders_until_sigterm(
    env: dict[str, str], conn: asyncpg.Connection
):
    assert run_cli("demo-data", "--users", "50", "--orders", "100", env=env).returncode == 0
    before = await conn.fetchval("SELECT max(id) FROM order_events")
    process = subprocess.Popen(
        [sys.executable, "-m", "admin", "simulate-orders", "--rate", "40"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines, reader = _lines(process)
        reports = [lines.get(timeout=30) for _ in range(2)]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=10)
    rest = [lines.get_nowait() for _ in range(lines.qsize())]
    assert all(re.match(r"\d\d:\d\d:\d\d \+\d+ orders, \d+ status changes", r) for r in reports)
    summary = rest[-1]
    match = re.fullmatch(r"stopped: ([\d,]+) orders created, ([\d,]+) status changes\n", summary)
    assert match, rest
    created = int(match.group(1).replace(",", ""))
    changed = int(match.group(2).replace(",", ""))
    assert created > 0 and changed > 0

    events = await conn.fetch(
        "SELECT kind, count(*) FROM order_events WHERE id > $1 GROUP BY kind", before
    )
    counts = {row["kind"]: row["count"] for row in events}
    assert counts.get("created") == created
    assert counts.get("status_changed") == changed
    assert await conn.fetchval("SELECT count(*) FROM orders") == 100 + created
