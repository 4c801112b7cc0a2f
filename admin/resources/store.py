"""Writing one table: insert, conflict-checked update and delete, bulk actions, and the
mapping of constraint violations to the fields they concern. SQL is built from the catalog's
names (always quoted); values are always parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from admin.resources import values
from admin.resources.model import Column, Table, quote_ident
from admin.resources.query import ListQuery
from admin.resources.reads import ROW_VERSION

SNAPSHOT_SKIP = (ROW_VERSION, "__ref_", "__key", "__label")


def snapshot(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as JSON for the audit log and conflict views (engine-only columns left out)."""
    return {
        key: values.snapshot_value(value)
        for key, value in dict(row).items()
        if not key.startswith(SNAPSHOT_SKIP)
    }


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def insert(
    conn: asyncpg.Connection, table: Table, new: Mapping[str, Any], select: str
) -> asyncpg.Record:
    if not new:
        sql = f"INSERT INTO {table.qualified} AS t DEFAULT VALUES RETURNING {select}"
        row: asyncpg.Record = await conn.fetchrow(sql)
        return row
    names = ", ".join(quote_ident(n) for n in new)
    params = ", ".join(f"${i}" for i in range(1, len(new) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO {table.qualified} AS t ({names}) VALUES ({params}) RETURNING {select}",
        *new.values(),
    )
    return row


async def update(
    conn: asyncpg.Connection,
    table: Table,
    key: Sequence[Any],
    token: str,
    changes: Mapping[str, Any],
    select: str,
) -> asyncpg.Record | None:
    """The updated row, or None when the row is gone or no longer at `token`."""
    n = len(key)
    where = f"{table.key_condition(1, 't')} AND t.{table.token_sql}::text = ${n + 1}"
    if not changes:
        return await conn.fetchrow(
            f"SELECT {select} FROM {table.qualified} AS t WHERE {where} FOR UPDATE", *key, token
        )
    sets = [f"{quote_ident(name)} = ${n + 2 + i}" for i, name in enumerate(changes)]
    if table.bumps_version:
        # with or without a trigger doing the same, every write moves the version on
        sets.append('"version" = t."version" + 1')
    return await conn.fetchrow(
        f"UPDATE {table.qualified} AS t SET {', '.join(sets)} WHERE {where} RETURNING {select}",
        *key,
        token,
        *changes.values(),
    )


async def delete(
    conn: asyncpg.Connection, table: Table, key: Sequence[Any], token: str | None, select: str
) -> asyncpg.Record | None:
    """The deleted row, or None when it is gone (or moved past `token`, when given)."""
    condition = table.key_condition(1, "t")
    args: list[Any] = list(key)
    if token is not None:
        args.append(token)
        condition += f" AND t.{table.token_sql}::text = ${len(args)}"
    return await conn.fetchrow(
        f"DELETE FROM {table.qualified} AS t WHERE {condition} RETURNING {select}", *args
    )


# ---- bulk


def target(
    table: Table, query: ListQuery, keys: Sequence[tuple[Any, ...]] | None
) -> tuple[str, list[object]]:
    """`SELECT <key> FROM table WHERE ...` for the selected keys, or all rows matching."""
    columns = table.key_columns_sql
    if keys is None:
        where, _, args = query.filter_sql()
        return f"SELECT {columns} FROM {table.qualified} AS t {where}", args
    arrays = [f"${i + 1}::{c.info.type_sql}[]" for i, c in enumerate(table.primary_key)]
    args = [[k[i] for k in keys] for i in range(len(table.primary_key))]
    return (
        f"SELECT {columns} FROM {table.qualified} AS t WHERE ({columns}) IN"
        f" (SELECT * FROM unnest({', '.join(arrays)}))",
        args,
    )


async def count_target(conn: asyncpg.Connection, sql_args: tuple[str, list[object]]) -> int:
    sql, args = sql_args
    value: int = await conn.fetchval(f"SELECT count(*) FROM ({sql}) AS target", *args)
    return value


async def bulk_set(
    conn: asyncpg.Connection,
    table: Table,
    sql_args: tuple[str, list[object]],
    column: Column,
    value: Any,
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Set `column` on every targeted row where it differs, in one statement:
    (key text, before, after) for the audit log."""
    sql, args = sql_args
    n = len(args) + 1
    sets = [f"{column.quoted} = ${n}"]
    tracked = [column.name]
    if table.bumps_version:
        sets.append('"version" = t."version" + 1')
        tracked.append("version")
    join = " AND ".join(f"old.{c.quoted} = t.{c.quoted}" for c in table.primary_key)
    keys = ", ".join(f"t.{c.quoted}" for c in table.primary_key)

    def fields(alias: str) -> str:
        return ", ".join(f"{sql_literal(name)}, {alias}.{quote_ident(name)}" for name in tracked)

    rows = await conn.fetch(
        f"""
        UPDATE {table.qualified} AS t SET {", ".join(sets)}
        FROM {table.qualified} AS old
        WHERE {join} AND ({keys}) IN ({sql}) AND t.{column.quoted} IS DISTINCT FROM ${n}
        RETURNING {keys}, jsonb_build_object({fields("old")}) AS __before,
                  jsonb_build_object({fields("t")}) AS __after
        """,
        *args,
        value,
    )
    return [(table.key_of(r), r["__before"], r["__after"]) for r in rows]


async def bulk_delete(
    conn: asyncpg.Connection, table: Table, sql_args: tuple[str, list[object]], select: str
) -> list[asyncpg.Record]:
    sql, args = sql_args
    keys = ", ".join(f"t.{c.quoted}" for c in table.primary_key)
    return await conn.fetch(
        f"DELETE FROM {table.qualified} AS t WHERE ({keys}) IN ({sql}) RETURNING {select}", *args
    )


# ---- errors


async def clashing_key(
    conn: asyncpg.Connection,
    table: Table,
    column: Column,
    value: Any,
    key: Sequence[Any] | None,
) -> str | None:
    """The key (as in URLs) of another row holding `value` under a unique constraint or index
    on this column alone: the column itself, or an expression of it (lower(email))."""
    key_sql = ", ".join(f"t.{c.quoted}" for c in table.primary_key)
    typed = ", ".join(f"${i + 2}::{c.info.type_sql}" for i, c in enumerate(table.primary_key))
    for constraint in table.info.constraints:
        if constraint.kind not in ("u", "i", "p") or constraint.columns != (column.name,):
            continue
        expression = constraint.definition if constraint.kind == "i" else ""
        if expression and expression != column.name and expression != column.quoted:
            # the index's expression over the typed value, named like the column
            value_sql = f"SELECT $1::{column.info.type_sql} AS {column.quoted}"
            probe = f"(SELECT {expression} FROM ({value_sql}) AS v)"
            condition = f"({expression}) = {probe}"
        else:
            condition = f"t.{column.quoted} = $1"
        sql = (
            f"SELECT {key_sql} FROM {table.qualified} AS t WHERE {condition}"
            f" AND ({key_sql}) IS DISTINCT FROM ({typed}) LIMIT 1"
        )
        found = await conn.fetchrow(sql, value, *(key or [None] * len(table.primary_key)))
        if found is not None:
            return table.encode_key(tuple(found))
    return None


def constraint_errors(table: Table, exc: asyncpg.PostgresError) -> dict[str, str]:
    """The fields a refused write concerns, each with a message; `__all__` otherwise."""
    name = getattr(exc, "constraint_name", None) or ""
    columns = [table.by_name[c] for c in table.info.constraint_columns(name) if c in table.by_name]
    if isinstance(exc, asyncpg.NotNullViolationError):
        column = table.by_name.get(getattr(exc, "column_name", "") or "")
        if column is not None:
            return {column.name: f"{column.label} is required."}
    if columns:
        first = columns[0]
        if isinstance(exc, asyncpg.UniqueViolationError):
            labels = " and ".join(c.label.lower() for c in columns)
            return {first.name: f"Another {table.label} already has this {labels}."}
        if isinstance(exc, asyncpg.ForeignKeyViolationError):
            return {first.name: "There is no such record to refer to."}
        if isinstance(exc, asyncpg.CheckViolationError):
            return {first.name: "This value is not allowed here."}
    message = getattr(exc, "message", "") or str(exc)
    return {"__all__": f"The database refused these values: {message}"}
