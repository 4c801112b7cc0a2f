"""Change capture: the statement-level triggers that log every write to every table.

Each base table of the registry gets a capture function of its own and four triggers
(insert, update, delete, truncate) calling it, so every writer is seen, whatever it is. The
function's SQL is static, written for that table (its name and primary key as constants),
so PL/pgSQL plans it once per connection: a single-row write pays for one small insert.
A statement changing more rows than `admin.live_row_limit` (default 100) writes one
summary row instead. Functions and triggers are installed when the catalog is read and
replaced when the table's key changed; a table whose lock cannot be had soon (a long
transaction holds it) is left for the next catalog read, so a busy table never stalls a page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import asyncpg

from admin.resources.tables import TableInfo
from admin.sql import quote_ident

log = logging.getLogger("admin.capture")

PREFIX = "admin_live_"
ROW_LIMIT = 100
TRIGGERS = (
    ("insert", "INSERT", "REFERENCING NEW TABLE AS admin_live_new"),
    ("update", "UPDATE", "REFERENCING OLD TABLE AS admin_live_old NEW TABLE AS admin_live_new"),
    ("delete", "DELETE", "REFERENCING OLD TABLE AS admin_live_old"),
    ("truncate", "TRUNCATE", ""),
)
LOCK_TIMEOUT = "1s"

_INSTALLED = r"""
SELECT t.tgrelid AS oid, t.tgname AS name, p.proname AS function, p.prosrc AS body
FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
WHERE t.tgrelid = any($1::oid[]) AND t.tgname LIKE 'admin\_live\_%' AND NOT t.tgisinternal
"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def function_name(info: TableInfo) -> str:
    return f"{PREFIX}capture_{info.oid}"


def body(info: TableInfo) -> str:
    """The capture function's PL/pgSQL for one table."""
    schema, table = _literal(info.schema), _literal(info.name)
    summary = (
        "INSERT INTO resource_changes (schema_name, table_name, op, key, row_count, actor)"
        f" VALUES ({schema}, {table}, TG_OP, NULL, changed, who);"
    )
    if info.primary_key:
        key = ", ".join(f"t.{quote_ident(c)}::text" for c in info.primary_key)
        same = " AND ".join(f"n.{quote_ident(c)} = t.{quote_ident(c)}" for c in info.primary_key)

        def rows(source: str) -> str:
            return (
                "INSERT INTO resource_changes (schema_name, table_name, op, key, actor)"
                f" SELECT {schema}, {table}, TG_OP, ARRAY[{key}], who FROM {source} AS t;"
            )

        def updated_rows() -> str:
            # a row whose key changed is reported under its old key as deleted, first, so a
            # page showing the old key strikes it; one statement, so an update without a
            # key change pays only for the anti-join's probe
            return (
                "INSERT INTO resource_changes (schema_name, table_name, op, key, actor)"
                f" SELECT {schema}, {table}, 'DELETE', ARRAY[{key}], who FROM admin_live_old AS t"
                f" WHERE NOT EXISTS (SELECT 1 FROM admin_live_new AS n WHERE {same})"
                f" UNION ALL SELECT {schema}, {table}, TG_OP, ARRAY[{key}], who"
                " FROM admin_live_new AS t;"
            )
    else:

        def rows(source: str) -> str:
            return summary

        def updated_rows() -> str:
            return summary

    def branch(source: str, write: str | None = None) -> str:
        return (
            f"SELECT count(*) INTO changed FROM {source};\n"
            "        IF changed > row_limit THEN\n"
            f"            {summary}\n"
            "        ELSIF changed > 0 THEN\n"
            f"            {write or rows(source)}\n"
            "        END IF;"
        )

    return f"""
DECLARE
    changed bigint := 0;
    row_limit bigint := coalesce(
        nullif(current_setting('admin.live_row_limit', true), '')::bigint, {ROW_LIMIT});
    who text := coalesce(nullif(current_setting('admin.actor', true), ''), session_user::text);
BEGIN
    IF TG_OP = 'DELETE' THEN
        {branch("admin_live_old")}
    ELSIF TG_OP = 'TRUNCATE' THEN
        {summary}
    ELSIF TG_OP = 'UPDATE' THEN
        {branch("admin_live_new", updated_rows())}
    ELSE
        {branch("admin_live_new")}
    END IF;
    RETURN NULL;
END;
"""


def statements(info: TableInfo) -> list[str]:
    """The DDL that (re)installs the capture of one table."""
    target = f"{quote_ident(info.schema)}.{quote_ident(info.name)}"
    function = f"public.{function_name(info)}"
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql"
        f" AS {_literal(body(info))}",
        *(
            f"CREATE OR REPLACE TRIGGER {PREFIX}{suffix} AFTER {event} ON {target} {referencing}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            for suffix, event, referencing in TRIGGERS
        ),
    ]


async def ensure(conn: asyncpg.Connection, infos: Iterable[TableInfo]) -> tuple[int, list[str]]:
    """Install what is missing or stale; returns how many tables got their capture now and
    the tables left without it."""
    tables = [i for i in infos if i.relkind in ("r", "p")]
    if not tables:
        return 0, []
    rows = await conn.fetch(_INSTALLED, [t.oid for t in tables])
    installed = {(row["oid"], row["name"]): (row["function"], row["body"]) for row in rows}
    missed: list[str] = []
    done = 0
    for info in tables:
        expected = (function_name(info), body(info))
        if all(installed.get((info.oid, PREFIX + suffix)) == expected for suffix, _, _ in TRIGGERS):
            continue
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                for statement in statements(info):
                    await conn.execute(statement)
            done += 1
        except asyncpg.PostgresError as exc:
            log.warning("no change capture on %s.%s yet: %s", info.schema, info.name, exc)
            missed.append(f"{info.schema}.{info.name}")
    return done, missed


_ORPHANS = r"""
SELECT p.proname AS name FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace AND p.proname ~ '^admin_live_capture_[0-9]+$'
  AND p.pronargs = 0 AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgfoid = p.oid)
"""


async def drop_orphans(conn: asyncpg.Connection) -> int:
    """Drop the capture functions no trigger uses any more (their table was dropped);
    returns how many. A function being installed is never seen here without its triggers:
    both are created in one transaction."""
    dropped = 0
    for row in await conn.fetch(_ORPHANS):
        function = f"public.{quote_ident(row['name'])}()"
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                await conn.execute(f"DROP FUNCTION IF EXISTS {function}")
            dropped += 1
        except asyncpg.PostgresError as exc:
            log.warning("capture function %s not dropped yet: %s", function, exc)
    return dropped
