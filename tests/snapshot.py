"""A fingerprint of every table's contents, to prove that a refused request wrote nothing."""

from __future__ import annotations

import asyncpg

TABLES = (
    "staff", "login_attempts", "users", "orders", "order_events", "audit_log",
    "categories", "products", "order_items",
)  # fmt: skip


async def snapshot(conn: asyncpg.Connection) -> dict[str, str]:
    """table -> md5 of all its rows (order-independent)."""
    result: dict[str, str] = {}
    for table in TABLES:
        result[table] = await conn.fetchval(
            f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {table} t"
        )
    return result
