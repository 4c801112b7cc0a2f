"""Migrations: each applied once, in its own transaction, safe when two instances race."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from admin.migrations import MIGRATIONS_DIR, available, migrate


async def recorded_versions(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    return [row["version"] for row in rows]


async def test_migrate_applies_every_file_once_then_nothing(empty_database_url: str):
    versions = [migration.version for migration in available()]
    assert versions and versions[0].startswith("001_")
    conn = await asyncpg.connect(empty_database_url)
    try:
        assert await migrate(conn) == versions
        assert await recorded_versions(conn) == versions
        tables = {
            row["tablename"]
            for row in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        }
        assert {"staff", "users", "orders", "order_events", "audit_log"} <= tables
        assert {"categories", "products", "order_items"} <= tables

        assert await migrate(conn) == []
        assert await recorded_versions(conn) == versions
    finally:
        await conn.close()


async def test_two_migrators_racing_apply_each_migration_exactly_once(empty_database_url: str):
    versions = [migration.version for migration in available()]
    first, second = [await asyncpg.connect(empty_database_url) for _ in range(2)]
    try:
        results = await asyncio.gather(migrate(first), migrate(second))
        # one of them did everything, the other waited on the lock and found nothing to do
        assert sorted(results, key=len) == [[], versions]
        assert await recorded_versions(first) == versions
        count = await first.fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(versions)
    finally:
        await first.close()
        await second.close()


async def test_a_failing_migration_rolls_back_alone_and_is_retried_later(
    empty_database_url: str, tmp_path: Path
):
    (tmp_path / "001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "002_bad.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_column FROM good;"
    )
    (tmp_path / "notes.txt").write_text("not a migration")
    conn = await asyncpg.connect(empty_database_url)
    try:
        with pytest.raises(asyncpg.UndefinedColumnError):
            await migrate(conn, tmp_path)
        assert await recorded_versions(conn) == ["001_good"]
        assert await conn.fetchval("SELECT to_regclass('good') IS NOT NULL")
        assert await conn.fetchval("SELECT to_regclass('half_done') IS NULL")

        (tmp_path / "002_bad.sql").write_text("CREATE TABLE half_done (id int);")
        assert await migrate(conn, tmp_path) == ["002_bad"]
        assert await recorded_versions(conn) == ["001_good", "002_bad"]
        # the lock was released on the failure path too: another session can take it
        other = await asyncpg.connect(empty_database_url)
        try:
            assert await migrate(other, tmp_path) == []
        finally:
            await other.close()
    finally:
        await conn.close()


async def test_the_per_test_database_is_fully_migrated(conn: asyncpg.Connection):
    versions = [migration.version for migration in available()]
    assert await recorded_versions(conn) == versions


async def test_the_catalog_migration_applies_on_a_database_already_in_use(
    empty_database_url: str, tmp_path: Path
):
    """A database migrated before the catalog existed, with customers and orders in it."""
    earlier = [m for m in available() if m.version < "009_"]
    for migration in earlier:
        shutil.copy(migration.path, tmp_path / migration.path.name)
    conn = await asyncpg.connect(empty_database_url)
    try:
        assert await migrate(conn, tmp_path) == [m.version for m in earlier]
        user_id = await conn.fetchval(
            "INSERT INTO users (username, email) VALUES ('early', 'early@example.com') RETURNING id"
        )
        order_id = await conn.fetchval(
            "INSERT INTO orders (user_id, total) VALUES ($1, 12.50) RETURNING id", user_id
        )

        applied = await migrate(conn, MIGRATIONS_DIR)
        assert applied == [m.version for m in available() if m.version >= "009_"]
        product_id = await conn.fetchval(
            "INSERT INTO products (sku, name, price) VALUES ('EARLY-1', 'Mug', 12.50) RETURNING id"
        )
        await conn.execute(
            "INSERT INTO order_items (order_id, product_id, quantity, unit_price)"
            " VALUES ($1, $2, 1, 12.50)",
            order_id,
            product_id,
        )
        assert await conn.fetchval("SELECT total FROM orders") == 12.5
    finally:
        await conn.close()


async def test_every_foreign_key_leads_an_index(conn: asyncpg.Connection):
    """Deleting a referenced row looks up its referencing rows: that must never be a scan."""
    unindexed = await conn.fetch(
        """
        SELECT c.conrelid::regclass::text AS tab, c.conname
        FROM pg_constraint c
        WHERE c.contype = 'f'
          AND NOT EXISTS (
              SELECT FROM pg_index i
              WHERE i.indrelid = c.conrelid
                AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] = c.conkey)
        """
    )
    assert [tuple(row) for row in unindexed] == []
