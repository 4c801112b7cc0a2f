"""Numbered .sql migrations, each applied once, in its own transaction, under an advisory lock."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg

from admin import db

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every instance of the app.
ADVISORY_LOCK_KEY = 0x61646D696E  # "admin"


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def available(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    files = sorted(p for p in directory.glob("*.sql") if p.stem.split("_", 1)[0].isdigit())
    return [Migration(version=p.stem, path=p) for p in files]


async def applied_versions(conn: asyncpg.Connection) -> set[str]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return set()
    return {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply what is missing; returns the versions applied by this call.

    One transaction holds a transaction-scoped advisory lock, so a second instance waits for
    the first and then finds nothing left to do, and nothing outlives the transaction: this
    works through a transaction pooler (PgBouncer) as well as over a direct connection. Each
    migration runs in a savepoint: a failing one rolls back alone, the ones before it commit.
    """
    newly_applied: list[str] = []
    failure: asyncpg.PostgresError | None = None
    async with conn.transaction():
        # a second instance queues behind the first, and an ALTER behind the readers
        await db.wait_for_locks(conn)
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK_KEY)
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version text PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = await applied_versions(conn)
        for migration in available(directory):
            if migration.version in done:
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version) VALUES ($1)", migration.version
                    )
            except asyncpg.PostgresError as exc:
                failure = exc
                break
            newly_applied.append(migration.version)
    if failure is not None:
        raise failure
    return newly_applied
