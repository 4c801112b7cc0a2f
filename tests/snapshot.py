"""A fingerprint of every table's contents, to prove that a refused request wrote nothing."""

from __future__ import annotations

import asyncpg

USER_TABLES = """
SELECT CASE WHEN n.nspname = 'public' THEN quote_ident(c.relname)
            ELSE quote_ident(n.nspname) || '.' || quote_ident(c.relname) END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY 1
"""


async def snapshot(conn: asyncpg.Connection) -> dict[str, str]:
    """table (schema-qualified outside public) -> md5 of all its rows (order-independent), for
    every table of the database."""
    result: dict[str, str] = {}
    for table in await conn.fetch(USER_TABLES):
        name = table[0]
        result[name] = await conn.fetchval(
            f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {name} t"
        )
    return result
