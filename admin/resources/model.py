"""A table as the engine serves it: the catalog's facts merged with its declaration.

Everything a page, a query or a write needs about a table is computed here once per catalog
read: labels, which columns are listed, editable and sortable, the search plan, filters, the
conflict token, the label column, who may do what.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote

from admin.resources import keys
from admin.resources.spec import (
    INTROSPECTED,
    Action,
    BulkAction,
    Field,
    Filter,
    FilterKind,
    Resource,
    Search,
)
from admin.resources.tables import ColumnInfo, ForeignKey, Kind, TableInfo
from admin.sql import quote_ident

# Kept by the database, not typed by people: never editable unless declared, never shown
# as a change in history.
BOOKKEEPING = frozenset({"created_at", "updated_at", "version"})
NUMERIC_KINDS = frozenset({Kind.INTEGER, Kind.NUMERIC, Kind.FLOAT})
TEXT_KINDS = frozenset({Kind.TEXT, Kind.ENUM})
EDITABLE_KINDS = frozenset(Kind) - {Kind.BYTEA, Kind.UNKNOWN}
SCALAR_KINDS = frozenset(Kind) - {Kind.ARRAY, Kind.JSON, Kind.BYTEA, Kind.UNKNOWN}
MAX_SORT_COLUMNS = 3  # a combined sort's columns
# past this many rows (planner estimate) a search without an index is not run as a scan
SCAN_SEARCH_MAX_ROWS = 10_000
OFFSET_CAP = 10_000  # tables without a primary key: how deep the pages go
MAX_LIST_COLUMNS = 8


def humanize(name: str) -> str:
    text = re.sub(r"_id$", "", name).replace("_", " ").strip()
    return (text[:1].upper() + text[1:]) if text else name


# what a record form, the inline editor or the one-field check sends beside the columns; a
# column named like one of these (or like an escaped name) is sent as "~" + its name
FORM_CONTROLS = frozenset(
    {"csrf_token", "version", "back", "_then", "_from", "__fields", "__key", "q", "field"}
)


@dataclass(frozen=True)
class Column:
    info: ColumnInfo
    label: str
    field: Field
    editable: bool
    sortable: bool
    reference: ForeignKey | None  # a single-column foreign key from this column

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def kind(self) -> Kind:
        return self.info.kind

    @cached_property
    def quoted(self) -> str:
        return quote_ident(self.info.name)

    @cached_property
    def input_name(self) -> str:
        """The name of the column's field in a form, never one of the form's own."""
        name = self.info.name
        return "~" + name if name in FORM_CONTROLS or name.startswith("~") else name

    @property
    def required(self) -> bool:
        """A value must be typed: NOT NULL, no default, and not a checkbox."""
        return (
            not self.info.nullable and not self.info.has_default and self.kind is not Kind.BOOLEAN
        )

    @property
    def css(self) -> str:
        # a reference shows the referenced record's label: text, not a number
        return "num" if self.kind in NUMERIC_KINDS and self.reference is None else ""

    @property
    def choices(self) -> tuple[str, ...]:
        return self.info.choices

    @cached_property
    def widget(self) -> str:
        if self.field.widget:
            return self.field.widget
        if self.reference is not None:
            return "reference"
        if self.choices:
            return "choice"
        return {
            Kind.BOOLEAN: "boolean" if not self.info.nullable else "choice",
            Kind.JSON: "textarea",
            Kind.ARRAY: "textarea",
            Kind.DATE: "date",
            Kind.TIMESTAMPTZ: "datetime",
            Kind.TIMESTAMP: "datetime",
            Kind.INTEGER: "number",
            Kind.NUMERIC: "decimal",
            Kind.FLOAT: "decimal",
        }.get(self.kind, "text")

    @property
    def ref_label_alias(self) -> str:
        return f"__ref_{self.name}"


@dataclass(frozen=True)
class SortKey:
    """One column of a sort; `flipped`: it runs the other way from the sort's direction (the
    first column's), spelled "-name" in the URL."""

    column: Column
    flipped: bool = False

    @property
    def spelled(self) -> str:
        return ("-" if self.flipped else "") + self.column.name


@dataclass(frozen=True)
class SearchPlan:
    """How a free-text search runs on this table, and what the page says about it."""

    mode: str  # "declared", "trigram", "fulltext", "scan", "exact", "none"
    expression: str = ""
    declared: Search | None = None
    exact_columns: tuple[str, ...] = ()
    note: str = ""
    placeholder: str = ""
    # an index answers the search, so collecting every match is cheap when matches are few
    indexed: bool = False


class Table:
    """One administered table (or view)."""

    def __init__(self, info: TableInfo, spec: Resource | None, slug: str) -> None:
        self.info = info
        self.declared = spec is not None
        self.spec = spec or Resource(table=info.name, schema=info.schema, permissions=INTROSPECTED)
        self.slug = slug
        self.url = "/" + quote(slug, safe="~.,-_")
        self.qualified = f"{quote_ident(info.schema)}.{quote_ident(info.name)}"
        self.plural = self.spec.plural or humanize(info.name).lower()
        self.label = self.spec.label or _singular(self.plural)
        self.title = self.plural[:1].upper() + self.plural[1:]
        self.columns = tuple(self._column(c) for c in info.columns)
        self.by_name = {c.name: c for c in self.columns}
        self.primary_key = tuple(self.by_name[n] for n in info.primary_key if n in self.by_name)
        self.keyed = bool(self.primary_key) and len(self.primary_key) == len(info.primary_key)
        self.writable = self.keyed and info.relkind in ("r", "p")
        self.token_sql = self._token_sql()
        single = self.primary_key[0] if len(self.primary_key) == 1 else None
        self._integer_key = single.name if single and single.kind is Kind.INTEGER else None
        # set by the registry once every table is known (references cross tables)
        self.targets: dict[str, Table | None] = {}
        self.list_cells: tuple[tuple[Column, Any], ...] = ()
        self.list_layout: tuple[tuple[str, Any, str, bool], ...] = ()
        self.detail_cells: tuple[tuple[Column, Any], ...] = ()
        self.list_select = ""
        self.detail_select = ""

    # ---- columns

    def _column(self, info: ColumnInfo) -> Column:
        field = self.spec.fields.get(info.name, Field())
        single_keys = [k for k in self.info.foreign_keys if k.columns == (info.name,)]
        return Column(
            info=info,
            label=field.label or ("ID" if info.name == "id" else humanize(info.name)),
            field=field,
            editable=self._editable(info, field),
            sortable=self._sortable(info),
            reference=single_keys[0] if single_keys else None,
        )

    def _editable(self, info: ColumnInfo, field: Field) -> bool:
        if info.generated or info.identity == "a" or info.kind not in EDITABLE_KINDS:
            return False
        if self.spec.form_columns is not None:
            return info.name in self.spec.form_columns and field.editable is not False
        if field.editable is not None:
            return field.editable
        if info.name in BOOKKEEPING:
            return False
        return True

    def _sortable(self, info: ColumnInfo) -> bool:
        if info.kind not in SCALAR_KINDS:
            return False
        if self.info.primary_key[:1] == (info.name,):
            return True
        return any(
            i.method == "btree" and i.leading_column == info.name and not i.partial
            for i in self.info.indexes
        )

    @cached_property
    def list_columns(self) -> tuple[Column, ...]:
        names = self.spec.list_columns
        if names is not None:
            return tuple(self.by_name[n] for n in names if n in self.by_name)
        shown = [
            c
            for c in self.columns
            if c.name not in ("updated_at", "version") and c.kind not in (Kind.BYTEA,)
        ]
        return tuple(shown[:MAX_LIST_COLUMNS])

    @cached_property
    def form_columns(self) -> tuple[Column, ...]:
        names = self.spec.form_columns
        if names is not None:
            return tuple(self.by_name[n] for n in names if n in self.by_name)
        return tuple(c for c in self.columns if c.editable)

    @cached_property
    def detail_columns(self) -> tuple[Column, ...]:
        return self.columns

    @cached_property
    def references(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.reference is not None)

    @cached_property
    def label_column(self) -> Column | None:
        """What a reference to one of these records shows: declared, else the first unique
        text column, else nothing (the key is shown)."""
        if self.spec.label_column:
            return self.by_name.get(self.spec.label_column)
        for constraint in self.info.constraints:
            if constraint.kind in ("u", "i") and len(constraint.columns) == 1:
                column = self.by_name.get(constraint.columns[0])
                if column is not None and column.kind is Kind.TEXT:
                    return column
        for name in ("name", "title", "label", "username"):
            column = self.by_name.get(name)
            if column is not None and column.kind is Kind.TEXT:
                return column
        return None

    # ---- sorting

    @cached_property
    def sorts(self) -> dict[str, Column]:
        if not self.keyed:
            return {}
        return {c.name: c for c in self.columns if c.sortable}

    @cached_property
    def sort_combinations(self) -> dict[str, tuple[SortKey, ...]]:
        """Sorts on several columns, spelled "a,b" or "a,-b" (`-`: the other way from the
        first column): the leading keys of a btree index, each in the index's direction
        (read forwards or backwards), or a declared combination. A column that may be NULL
        takes part where the index puts its NULLs where PostgreSQL's default does (last
        ascending, first descending). The primary key stays the tie-breaker, so it is never
        one of them."""
        if not self.keyed:
            return {}
        found: dict[str, tuple[SortKey, ...]] = {}
        for index in self.info.indexes:
            if index.method != "btree" or index.partial or not index.keys:
                continue
            first = index.descending(0)
            spelled: list[str] = []
            for position, name in enumerate(index.keys[:MAX_SORT_COLUMNS]):
                column = self._combinable(name)
                descending = index.descending(position)
                if column is None or (
                    column.info.nullable and index.nulls_first(position) != descending
                ):
                    break
                spelled.append(("-" if descending != first else "") + column.name)
                self._combination(found, spelled)
        for names in self.spec.sort_combinations:
            spelled = [n.strip() for n in names[:MAX_SORT_COLUMNS]]
            if spelled and spelled[0].startswith("-"):
                spelled = [n[1:] if n.startswith("-") else "-" + n for n in spelled]
            for length in range(1, len(spelled) + 1):
                if self._combinable(spelled[length - 1].removeprefix("-")) is None:
                    break
                self._combination(found, spelled[:length])
        return found

    def _combinable(self, name: str | None) -> Column | None:
        column = self.by_name.get(name or "")
        if column is None or column.kind not in SCALAR_KINDS:
            return None
        return None if column.name in self.info.primary_key else column

    def _combination(self, found: dict[str, tuple[SortKey, ...]], spelled: list[str]) -> None:
        if len(spelled) > 1:
            keys = (SortKey(self.by_name[n.removeprefix("-")], n.startswith("-")) for n in spelled)
            found.setdefault(",".join(spelled), tuple(keys))

    @property
    def default_sort(self) -> str | None:
        if not self.keyed:
            return None
        declared = self.spec.default_sort
        return declared if declared in self.sorts else self.primary_key[0].name

    @property
    def default_dir(self) -> str:
        return self.spec.default_dir

    # ---- filters and search

    @cached_property
    def filters(self) -> tuple[Filter, ...]:
        declared = list(self.spec.filters or ())
        if self.spec.filters is None:
            for c in self.columns:
                if c.kind is Kind.BOOLEAN:
                    declared.append(Filter(c.name, c.name, FilterKind.BOOLEAN, c.label))
                elif c.choices and c.reference is None:
                    declared.append(Filter(c.name, c.name, FilterKind.CHOICE, c.label))
        # every reference can be filtered on: related-record links rely on it
        covered = {f.column for f in declared if f.kind is FilterKind.EQUALS}
        for c in self.references:
            if c.name not in covered and c.kind in SCALAR_KINDS:
                declared.append(Filter(c.name, c.name, FilterKind.EQUALS, c.label))
        return tuple(declared)

    def filter_param(self, column: str) -> str | None:
        return next(
            (f.param for f in self.filters if f.column == column and f.kind is FilterKind.EQUALS),
            None,
        )

    @cached_property
    def search(self) -> SearchPlan:
        declared = self.spec.search
        trigram = next(
            (
                index
                for index in self.info.indexes
                if index.method in ("gin", "gist") and any("trgm" in o for o in index.opclasses)
            ),
            None,
        )
        if declared is not None:
            # a declared expression is written to match a trigram index's (see Search)
            indexed = (
                trigram is not None
                and declared.expression is not None
                and declared.condition is None
                and not declared.in_order_first
            )
            return SearchPlan(
                "declared", declared=declared, placeholder=declared.placeholder, indexed=indexed
            )
        if trigram is not None:
            return SearchPlan("trigram", expression=trigram.key_definitions[0], indexed=True)
        for index in self.info.indexes:
            definition = index.key_definitions[0] if index.key_definitions else ""
            if index.method == "gin" and definition.startswith("to_tsvector("):
                return SearchPlan("fulltext", expression=definition, indexed=True)
        text_columns = tuple(c.name for c in self.columns if c.kind in TEXT_KINDS)
        small = 0 <= self.info.estimated_rows <= SCAN_SEARCH_MAX_ROWS or self.info.is_view
        if small and text_columns:
            return SearchPlan("scan", exact_columns=text_columns)
        exact = tuple(
            c.name
            for c in self.columns
            if c.kind in SCALAR_KINDS
            and (
                self.info.primary_key[:1] == (c.name,)
                or any(
                    i.method == "btree" and i.leading_column == c.name for i in self.info.indexes
                )
            )
        )
        if not exact:
            note = "" if small else "This large table has no index to search with."
            return SearchPlan("none", note=note)
        labels = ", ".join(self.by_name[n].label for n in exact)
        return SearchPlan(
            "exact",
            exact_columns=exact,
            # a small table without text is searched the same way, and needs no excuse
            note=""
            if small
            else f"Search on this large table matches exact values of: {labels}"
            " (no index for substring search).",
            placeholder="Exact " + labels,
        )

    # ---- conflicts

    def _token_sql(self) -> str | None:
        """The value an edit form carries to detect a lost update: the version column where
        there is one, else the row's xmin (changes with every update of the row)."""
        if not self.writable:
            return None
        version = self.by_name.get("version")
        if version is not None and version.kind is Kind.INTEGER and not version.editable:
            return quote_ident("version")
        return "xmin"

    @property
    def bumps_version(self) -> bool:
        return self.token_sql == quote_ident("version")

    # ---- permissions

    def allows(self, role: str, action: Action) -> bool:
        if action in (Action.ADD, Action.CHANGE, Action.DELETE, Action.IMPORT):
            if not self.writable:
                return False
        return role in self.spec.permissions.get(action, frozenset())

    @cached_property
    def bulk_actions(self) -> tuple[BulkAction, ...]:
        if not self.writable:
            return ()
        return tuple(
            a for a in self.spec.bulk_actions if a.column is None or a.column in self.by_name
        )

    # ---- keys

    def key_of(self, row: Any) -> str:
        if self._integer_key is not None:  # the usual key: its digits are the URL segment
            return str(row[self._integer_key])
        return self.encode_key([row[c.name] for c in self.primary_key])

    def encode_key(self, key: Any) -> str:
        return keys.encode(
            [keys.part_text(c.info, v) for c, v in zip(self.primary_key, key, strict=True)]
        )

    def record_url(self, row: Any) -> str:
        return f"{self.url}/{self.key_of(row)}"

    def parse_key(self, text: str) -> tuple[Any, ...]:
        """The primary key values of a URL segment; ValueError when it is not one."""
        return keys.decode(text, [c.info for c in self.primary_key])

    def key_condition(self, first_param: int, alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return " AND ".join(
            f"{prefix}{c.quoted} = ${first_param + i}" for i, c in enumerate(self.primary_key)
        )

    @property
    def key_columns_sql(self) -> str:
        return ", ".join(c.quoted for c in self.primary_key)

    # ---- templates

    def template_names(self, name: str) -> list[str]:
        """Datasette-style: the table's own override first, then the generic one."""
        return [f"{self.slug}/{name}", f"resource/{name}"]


def _singular(plural: str) -> str:
    if plural.endswith("ies"):
        return plural[:-3] + "y"
    if plural.endswith("ses") or plural.endswith("xes"):
        return plural[:-2]
    if plural.endswith("s") and not plural.endswith("ss"):
        return plural[:-1]
    return plural
