"""Reads pg_catalog: every table, view and materialized view of the configured schemas, with
columns, keys, constraints, foreign keys and indexes. Four queries whatever the table count."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import asyncpg

from admin.resources.tables import (
    INTEGER_RANGES,
    KINDS_BY_TYPE,
    ColumnInfo,
    Constraint,
    ForeignKey,
    IndexInfo,
    Kind,
    TableInfo,
)

log = logging.getLogger(__name__)

# A table never analyzed (reltuples -1: new, or too small for autovacuum to analyze) gets
# an upper bound from its size instead (a heap row takes at least 28 bytes): small tables are
# still searched by substring, and a big one is never taken for small.
RELATIONS = """
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind,
       CASE WHEN c.reltuples >= 0 OR c.relkind NOT IN ('r', 'm') THEN c.reltuples
            ELSE pg_relation_size(c.oid) / 28 END AS reltuples,
       obj_description(c.oid, 'pg_class') AS comment
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = any($1::text[])
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT c.relispartition
  AND NOT c.oid = any($2::oid[])
"""

# pg_relation_size and pg_get_expr open the table: behind an ACCESS EXCLUSIVE lock held or
# awaited (an ALTER TABLE or a VACUUM FULL in progress, or queued behind a long query) they
# would wait, and with them every request whose catalog check is due. Such tables are left
# out of the read (Catalog.locked); a lock taken in the meantime times out the read, which is
# tried again.
LOCKED = """
SELECT coalesce(array_agg(DISTINCT l.relation), '{}') FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.pid IS DISTINCT FROM pg_backend_pid()
  AND n.nspname = any($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""
READ_LOCK_TIMEOUT = "100ms"
READ_ATTEMPTS = 3

# Domains are read as their base type; arrays by their element type. "char" columns are
# cast to text: asyncpg returns them as bytes, which never equal 'e' or 'A'.
COLUMNS = """
SELECT a.attrelid AS oid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type_sql,
       bt.typname, bt.typtype::text AS typtype, bt.typcategory::text AS typcategory,
       et.typname AS elem_typname, et.typtype::text AS elem_typtype,
       format_type(et.oid, NULL) AS elem_type_sql,
       a.attnotnull OR coalesce(t.typnotnull, false) AS notnull,
       pg_get_expr(d.adbin, d.adrelid) AS default_sql,
       a.attidentity::text AS attidentity, a.attgenerated::text AS attgenerated,
       CASE WHEN a.atttypmod > 4 AND bt.typname IN ('varchar', 'bpchar')
            THEN a.atttypmod - 4 END AS max_length,
       CASE WHEN bt.typname = 'numeric' AND a.atttypmod > 4
            THEN (a.atttypmod - 4) & 65535 END AS numeric_scale,
       CASE WHEN bt.typname = 'numeric' AND a.atttypmod > 4
            THEN ((a.atttypmod - 4) >> 16) & 65535 END AS numeric_precision,
       (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e
         WHERE e.enumtypid = coalesce(et.oid, bt.oid)) AS enum_labels,
       col_description(a.attrelid, a.attnum) AS comment
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = any($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

CONSTRAINTS = """
SELECT c.conrelid AS oid, c.conname, c.contype::text AS contype,
       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(num, i)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num
             ORDER BY k.i) AS columns,
       rn.nspname AS ref_schema, r.relname AS ref_table,
       array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(num, i)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num
             ORDER BY k.i) AS ref_columns,
       c.confdeltype::text AS confdeltype, pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint c
LEFT JOIN pg_class r ON r.oid = c.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE c.conrelid = any($1::oid[]) AND c.contype IN ('p', 'u', 'f', 'c')
ORDER BY c.conrelid, c.conname
"""

INDEXES = """
SELECT i.indrelid AS oid, ic.relname AS name, am.amname AS method, i.indisunique,
       i.indpred IS NOT NULL AS partial,
       array(SELECT CASE WHEN k.num = 0 THEN NULL ELSE a.attname END
             FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, pos)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num
             WHERE k.pos <= i.indnkeyatts ORDER BY k.pos) AS keys,
       array(SELECT pg_get_indexdef(i.indexrelid, k, true)
             FROM generate_series(1, i.indnkeyatts) AS k) AS key_definitions,
       i.indoption::int2[] AS options,
       array(SELECT o.opcname FROM unnest(i.indclass::oid[]) WITH ORDINALITY k(opc, pos)
             JOIN pg_opclass o ON o.oid = k.opc ORDER BY k.pos) AS opclasses,
       (SELECT con.conname FROM pg_constraint con WHERE con.conindid = i.indexrelid
          AND con.conrelid = i.indrelid LIMIT 1) AS constraint_name
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE i.indrelid = any($1::oid[]) AND i.indisvalid
ORDER BY i.indrelid, ic.relname
"""

# Any DDL on the schemas writes catalog rows with a new xmin: the sum moves (and the counts
# catch drops). One cheap query, so a running panel notices new and altered tables. ANALYZE
# updates pg_class in place (no new xmin): the tables' sizes count by order of magnitude, so a
# table that grows tenfold gets the search plan of its new size. Its layout (count/row
# versions/size magnitudes of the relations, then the columns', constraints' and enum
# values') is what same_shape reads.
FINGERPRINT = """
SELECT concat_ws(':',
  (SELECT count(*) || '/' || coalesce(sum(c.xmin::text::bigint), 0) || '/'
          || coalesce(sum(floor(log(greatest(c.reltuples, 1)::numeric))), 0)
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = any($1::text[])),
  (SELECT count(*) || '/' || coalesce(sum(a.xmin::text::bigint), 0)
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = any($1::text[]) AND a.attnum > 0),
  (SELECT count(*) || '/' || coalesce(sum(co.xmin::text::bigint), 0)
     FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
    WHERE n.nspname = any($1::text[])),
  (SELECT count(*) || '/' || coalesce(sum(e.xmin::text::bigint), 0) FROM pg_enum e))
"""

# CHECK ((status = ANY (ARRAY['a'::text, 'b'::text]))) and CHECK ((status IN (...))) as
# pg_get_constraintdef prints them: a fixed list of choices for one column.
_CHECK_IN = re.compile(
    r"^CHECK \(\(?\(?(?P<col>\"(?:[^\"]|\"\")+\"|[\w$]+)\)?(?:::[\w\s\"]+)?"
    r" = ANY \(\(?ARRAY\[(?P<items>.*)\]\)?(?:::[\w\s\"\[\]]+)?\)\)\)?$"
)
_CHECK_ITEM = re.compile(r"'((?:[^']|'')*)'(?:::[\w\s\"]+)?")


async def fingerprint(conn: asyncpg.Connection, schemas: Sequence[str]) -> str:
    value: str = await conn.fetchval(FINGERPRINT, list(schemas))
    return value


def same_shape(one: str | None, other: str | None) -> bool:
    """Whether two fingerprints differ at most in their relations' row versions and sizes:
    no relation, column, constraint or enum value came or went or changed. A TRUNCATE, a
    VACUUM FULL, an ANALYZE, a new trigger or a rename moves only those."""
    if not one or not other:
        return False
    relations, _, rest = one.partition(":")
    other_relations, _, other_rest = other.partition(":")
    return rest == other_rest and relations.split("/")[0] == other_relations.split("/")[0]


class CatalogLocked(Exception):
    """Tables kept being locked while the catalog was read: it was not read."""

    retry_after = 2


@dataclass(frozen=True)
class Catalog:
    tables: list[TableInfo]
    # tables left unread, locked: as they were known before, or missing if they were not
    locked: frozenset[int]


async def read_tables(conn: asyncpg.Connection, schemas: Sequence[str]) -> list[TableInfo]:
    """Every relation of `schemas` that the panel can list, fully described."""
    return (await read_catalog(conn, schemas)).tables


async def read_catalog(
    conn: asyncpg.Connection,
    schemas: Sequence[str],
    known: Mapping[int, TableInfo] | None = None,
) -> Catalog:
    """Every relation of `schemas` that the panel can list, fully described; a table locked
    against reading is taken from `known` instead, or left out."""
    for attempt in range(READ_ATTEMPTS):
        try:
            # a savepoint inside a caller's transaction: a timeout unwinds this alone
            async with conn.transaction():
                was = await conn.fetchval("SELECT current_setting('lock_timeout')")
                await conn.execute("SELECT set_config('lock_timeout', $1, true)", READ_LOCK_TIMEOUT)
                locked = frozenset(await conn.fetchval(LOCKED, list(schemas)))
                tables = await _read(conn, schemas, locked)
                await conn.execute("SELECT set_config('lock_timeout', $1, true)", was)
        except asyncpg.LockNotAvailableError:
            log.warning("catalog read: a table was locked meanwhile (attempt %d)", attempt + 1)
            continue
        if locked:
            log.warning("catalog read: %d locked tables left as they were", len(locked))
        read = {t.oid for t in tables}
        kept = [
            replace(t, referenced_by=())
            for oid, t in (known or {}).items()
            if oid in locked and oid not in read
        ]
        return Catalog(_with_references([*tables, *kept]), locked)
    raise CatalogLocked("tables kept being locked while the catalog was read")


async def _read(
    conn: asyncpg.Connection, schemas: Sequence[str], locked: frozenset[int]
) -> list[TableInfo]:
    relations = await conn.fetch(RELATIONS, list(schemas), list(locked))
    oids = [r["oid"] for r in relations]
    columns = await conn.fetch(COLUMNS, oids)
    constraints = await conn.fetch(CONSTRAINTS, oids)
    indexes = await conn.fetch(INDEXES, oids)

    columns_of: dict[int, list[ColumnInfo]] = defaultdict(list)
    for row in columns:
        columns_of[row["oid"]].append(_column(row))
    constraints_of: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for row in constraints:
        constraints_of[row["oid"]].append(row)
    indexes_of: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for row in indexes:
        indexes_of[row["oid"]].append(row)

    tables = [
        _table(r, columns_of[r["oid"]], constraints_of[r["oid"]], indexes_of[r["oid"]])
        for r in relations
    ]
    return tables


def _kind(typname: str, typtype: str) -> Kind:
    if typtype == "e":
        return Kind.ENUM
    return KINDS_BY_TYPE.get(typname, Kind.UNKNOWN)


def _column(row: asyncpg.Record) -> ColumnInfo:
    element_kind = None
    element_type_sql = None
    if row["typcategory"] == "A" and row["elem_typname"] is not None:
        element_kind = _kind(row["elem_typname"], row["elem_typtype"])
        element_type_sql = row["elem_type_sql"]
        # lists of lists, documents or bytes are shown but not edited
        kind = Kind.ARRAY if element_kind not in (Kind.UNKNOWN, Kind.BYTEA) else Kind.UNKNOWN
    else:
        kind = _kind(row["typname"], row["typtype"])
    return ColumnInfo(
        name=row["attname"],
        position=row["attnum"],
        type_sql=row["type_sql"],
        type_name=row["typname"],
        kind=kind,
        element_kind=element_kind,
        element_type_sql=element_type_sql,
        nullable=not row["notnull"],
        default_sql=row["default_sql"],
        identity=row["attidentity"] or "",
        generated=(row["attgenerated"] or "") != "",
        choices=tuple(row["enum_labels"] or ()),
        max_length=row["max_length"],
        numeric_scale=row["numeric_scale"],
        numeric_precision=row["numeric_precision"],
        # an array's range is its elements'
        integer_range=INTEGER_RANGES.get(row["elem_typname"] or row["typname"]),
        comment=row["comment"],
    )


def check_choices(definition: str) -> tuple[str, tuple[str, ...]] | None:
    """(column, allowed values) when a CHECK constraint is a plain IN list, else None."""
    match = _CHECK_IN.match(definition.strip())
    if not match:
        return None
    column = match.group("col")
    if column.startswith('"'):
        column = column[1:-1].replace('""', '"')
    items = _CHECK_ITEM.findall(match.group("items"))
    if not items:
        return None
    return column, tuple(item.replace("''", "'") for item in items)


def _table(
    relation: asyncpg.Record,
    columns: list[ColumnInfo],
    constraints: list[asyncpg.Record],
    indexes: list[asyncpg.Record],
) -> TableInfo:
    primary_key: tuple[str, ...] = ()
    found: list[Constraint] = []
    foreign_keys: list[ForeignKey] = []
    choices: dict[str, tuple[str, ...]] = {}
    for row in constraints:
        cols = tuple(row["columns"])
        found.append(Constraint(row["conname"], row["contype"], cols, row["definition"] or ""))
        if row["contype"] == "p":
            primary_key = cols
        elif row["contype"] == "f":
            foreign_keys.append(
                ForeignKey(
                    name=row["conname"],
                    columns=cols,
                    ref_schema=row["ref_schema"],
                    ref_table=row["ref_table"],
                    ref_columns=tuple(row["ref_columns"]),
                    on_delete=row["confdeltype"],
                    schema=relation["schema"],
                    table=relation["name"],
                )
            )
        elif row["contype"] == "c":
            parsed = check_choices(row["definition"] or "")
            if parsed and parsed[0] in {c.name for c in columns}:
                choices[parsed[0]] = parsed[1]
    index_infos: list[IndexInfo] = []
    constraint_names = {c.name for c in found}
    for row in indexes:
        keys = tuple(row["keys"])
        index_infos.append(
            IndexInfo(
                name=row["name"],
                method=row["method"],
                keys=keys,
                key_definitions=tuple(row["key_definitions"]),
                opclasses=tuple(row["opclasses"]),
                unique=row["indisunique"],
                partial=row["partial"],
                options=tuple(row["options"]),
            )
        )
        if row["indisunique"] and row["constraint_name"] is None:
            # a unique index (perhaps on an expression such as lower(email)): violations
            # name the index, and the columns it mentions are the fields to blame
            named = tuple(k for k in keys if k) or _columns_in(
                " ".join(row["key_definitions"]), columns
            )
            if row["name"] not in constraint_names:
                definition = ", ".join(row["key_definitions"])
                found.append(Constraint(row["name"], "i", named, definition))
    if choices:
        columns = [
            replace(c, choices=choices[c.name]) if c.name in choices and not c.choices else c
            for c in columns
        ]
    return TableInfo(
        oid=relation["oid"],
        schema=relation["schema"],
        name=relation["name"],
        relkind=relation["relkind"],
        columns=tuple(columns),
        primary_key=primary_key,
        constraints=tuple(found),
        foreign_keys=tuple(foreign_keys),
        indexes=tuple(index_infos),
        estimated_rows=float(relation["reltuples"]),
        comment=relation["comment"],
    )


def _columns_in(expression: str, columns: list[ColumnInfo]) -> tuple[str, ...]:
    words = set(re.findall(r"\"((?:[^\"]|\"\")+)\"|([\w$]+)", expression))
    names = {quoted.replace('""', '"') or plain for quoted, plain in words}
    return tuple(c.name for c in columns if c.name in names)


def _with_references(tables: list[TableInfo]) -> list[TableInfo]:
    """Each table with the foreign keys (of tables read here) that point at it."""
    incoming: dict[tuple[str, str], list[ForeignKey]] = defaultdict(list)
    for table in tables:
        for key in table.foreign_keys:
            incoming[(key.ref_schema, key.ref_table)].append(key)
    return [replace(t, referenced_by=tuple(incoming[(t.schema, t.name)])) for t in tables]
