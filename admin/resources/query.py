"""ListQuery: a list request on one table, parsed and checked: search, filters, sort, cursor,
page size; and the SQL it stands for (WHERE, ORDER BY, keyset condition)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import quote_plus, urlencode

from admin import pg_input
from admin.resources import column_filters, cursors, values
from admin.resources.column_filters import ColumnFilter
from admin.resources.cursors import Cursor, InvalidQuery
from admin.resources.model import OFFSET_CAP, Column, SortKey, Table
from admin.resources.spec import Filter, FilterKind
from admin.resources.tables import Kind

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_QUERY_LENGTH = 200
MAX_COLUMNS = 12  # the column chooser's limit
MAX_AT = 10**12  # a position hint past this is dropped
_TSCONFIG = re.compile(r"^to_tsvector\(('(?:[^']|'')*'::regconfig),")


@dataclass(frozen=True)
class FilterValue:
    filter: Filter
    value: Any
    text: str


@dataclass(frozen=True)
class ListQuery:
    table: Table
    q: str = ""
    filters: tuple[FilterValue, ...] = ()
    column_filters: tuple[ColumnFilter, ...] = ()
    columns: tuple[Column, ...] | None = None  # None: the table's own list columns
    sort: Column | None = None
    then: tuple[SortKey, ...] = ()  # a combined sort's further columns
    descending: bool = False  # the first column's direction (the sort's)
    after: Cursor | None = None
    before: Cursor | None = None
    offset: int = 0  # tables without a primary key only
    limit: int = DEFAULT_LIMIT
    extra: dict[str, str] = field(default_factory=dict)
    # where the page sits: the cursor as it came, the last page (read backwards from the
    # end), and the position of its first row (a hint the page links carry; negative:
    # counted from the end)
    cursor_param: tuple[str, str] | None = None
    last: bool = False
    at: int | None = 0

    @classmethod
    def default(cls, table: Table) -> ListQuery:
        sort = table.sorts.get(table.default_sort or "")
        return cls(table=table, sort=sort, descending=table.default_dir == "desc")

    @classmethod
    def from_params(cls, table: Table, params: Mapping[str, str]) -> ListQuery:
        """Parse query parameters; InvalidQuery (a ValueError) with a user-facing message."""
        sort, then, descending = _parse_sort(table, params)
        after = before = None
        after_raw = params.get("after", "").strip()
        before_raw = params.get("before", "").strip()
        if after_raw and before_raw:
            raise InvalidQuery("Use either 'after' or 'before', not both.")
        last = params.get("last", "").strip() == "1"
        if (after_raw or before_raw or last) and sort is None:
            raise InvalidQuery("This table has no primary key, so it has no page cursors.")
        if last and (after_raw or before_raw):
            raise InvalidQuery("The last page has no cursor; use 'last' alone.")
        if sort is not None:
            order = (SortKey(sort), *then)
            after = cursors.decode(after_raw, table, order) if after_raw else None
            before = cursors.decode(before_raw, table, order) if before_raw else None
        return cls(
            table=table,
            q=parse_search(params.get("q")),
            filters=_parse_filters(table, params),
            column_filters=_parse_column_filters(table, params),
            columns=parse_columns(table, params),
            sort=sort,
            then=then,
            descending=descending,
            after=after,
            before=before,
            offset=_parse_offset(table, params.get("offset")),
            limit=parse_limit(params.get("limit")),
            cursor_param=(
                ("after", after_raw) if after else ("before", before_raw) if before else None
            ),
            last=last,
            at=_parse_at(params.get("at"), bool(after or before or last)),
        )

    @property
    def is_filtered(self) -> bool:
        return bool(self.q) or bool(self.filters) or bool(self.column_filters)

    @property
    def sort_columns(self) -> tuple[Column, ...]:
        """The columns the list is sorted by, in order (the primary key breaks ties)."""
        return () if self.sort is None else (self.sort, *(k.column for k in self.then))

    @property
    def sort_keys(self) -> tuple[SortKey, ...]:
        """The sort's columns with their directions (relative to the first's)."""
        return () if self.sort is None else (SortKey(self.sort), *self.then)

    @property
    def sort_name(self) -> str | None:
        """The sort as the URL spells it: "email", "status,created_at", "status,-total"."""
        return cursors.sort_name(self.sort_keys) if self.sort is not None else None

    def sort_positions(self) -> dict[str, int]:
        """Each sort column's place in the sort (1 first), for the headers."""
        return {c.name: i for i, c in enumerate(self.sort_columns, 1)}

    def sort_descending(self) -> dict[str, bool]:
        """Each sort column's own direction: True where it runs descending."""
        return {k.column.name: self.descending != k.flipped for k in self.sort_keys}

    @property
    def dir(self) -> str:
        return "desc" if self.descending else "asc"

    def filter_text(self, param: str) -> str:
        return next((f.text for f in self.filters if f.filter.param == param), "")

    def filter_value(self, param: str) -> Any:
        return next((f.value for f in self.filters if f.filter.param == param), None)

    # ---- SQL

    def filter_sql(self, first_param: int = 1) -> tuple[str, str, list[object]]:
        """(WHERE clause or "", ORDER BY clause, args) over the table's own columns."""
        search, conditions, args = self.conditions(first_param)
        if search:
            conditions = [search, *conditions]
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        return where, self.order_sql(ascending=not self.descending), args

    def conditions(self, first_param: int = 1) -> tuple[str | None, list[str], list[object]]:
        """(the search condition or None, the filters' conditions, args)."""
        conditions: list[str] = []
        args: list[object] = []

        def param(value: object) -> str:
            args.append(value)
            return f"${first_param + len(args) - 1}"

        search = self._search_condition(param) if self.q else None
        for item in self.filters:
            conditions.append(_filter_condition(self.table, item, param))
        for column_filter in self.column_filters:
            conditions.append(_column_condition(column_filter, param))
        return search, conditions, args

    def order_sql(self, *, ascending: bool) -> str:
        if self.sort is None:
            return ""
        return cursors.order_by(self.table, self.sort_keys, ascending=ascending)

    def _search_condition(self, param: Any) -> str:
        plan = self.table.search
        if plan.mode == "declared" and plan.declared is not None:
            if plan.declared.condition is not None:
                return plan.declared.condition(self.q, param)
            return f"{plan.declared.expression} ILIKE {param(like_pattern(self.q))}"
        if plan.mode == "trigram":
            return f"{plan.expression} ILIKE {param(like_pattern(self.q))}"
        if plan.mode == "fulltext":
            match = _TSCONFIG.match(plan.expression)
            config = f"{match.group(1)}, " if match else ""
            return f"{plan.expression} @@ plainto_tsquery({config}{param(self.q)})"
        if plan.mode == "scan":
            pattern = param(like_pattern(self.q))
            columns = [self.table.by_name[n] for n in plan.exact_columns]
            parts = [
                f"{c.quoted}{'' if c.kind is Kind.TEXT else '::text'} ILIKE {pattern}"
                for c in columns
            ]
            return "(" + " OR ".join(parts) + ")"
        if plan.mode == "exact":
            parts = []
            for name in plan.exact_columns:
                column = self.table.by_name[name]
                try:
                    value = values.scalar(column.kind, self.q, column=column.info)
                except ValueError:
                    continue
                parts.append(f"{column.quoted} = {param(value)}")
            return "(" + " OR ".join(parts) + ")" if parts else "false"
        return "false"

    # ---- links

    def params(self, **changes: str | None) -> dict[str, str]:
        """The query string of this view (without cursors), with `changes` applied."""
        if not changes:
            return dict(self._params)
        return self._params_with(changes)

    @cached_property
    def state_key(self) -> tuple[tuple[str, str], ...]:
        """The list's state (not its position) as a hashable key."""
        return tuple(sorted(self._params.items()))

    @cached_property
    def _params(self) -> dict[str, str]:
        # a list page asks for its own query string a dozen times (links, forms, exports)
        return self._params_with({})

    def _params_with(self, changes: dict[str, str | None]) -> dict[str, str]:
        table = self.table
        current: dict[str, str | None] = {"q": self.q or None}
        for item in self.filters:
            current[item.filter.param] = item.text
        for column_filter in self.column_filters:
            current[column_filter.param] = column_filter.text
        sort_name = self.sort_name
        default = (table.default_sort, table.default_dir)
        current["sort"] = sort_name if sort_name != table.default_sort else None
        current["dir"] = self.dir if (sort_name, self.dir) != default and self.sort else None
        current["limit"] = None if self.limit == DEFAULT_LIMIT else str(self.limit)
        if self.columns is not None:
            current["cols"] = ",".join(c.name for c in self.columns)
        current.update(changes)
        return {k: v for k, v in current.items() if v}

    def url(self, **changes: str | None) -> str:
        params = self.params(**changes)
        return self.table.url + (f"?{urlencode(params)}" if params else "")

    def position_params(self) -> dict[str, str]:
        """Where this page sits (cursor, last page, position hint): with params(), the
        whole state of the list, for the forms that come back to it."""
        found: dict[str, str] = {}
        if self.cursor_param is not None:
            found[self.cursor_param[0]] = self.cursor_param[1]
        if self.last:
            found["last"] = "1"
        if self.at and (self.cursor_param is not None or self.last):
            found["at"] = str(self.at)
        if self.offset:
            found["offset"] = str(self.offset)
        return found

    def state_params(self) -> dict[str, str]:
        return {**self._params, **self.position_params()}

    def state_url(self) -> str:
        """This very page: filters, sort, size and position."""
        params = self.state_params()
        return self.table.url + (f"?{urlencode(params)}" if params else "")

    def sort_urls(self) -> dict[str, str]:
        """Each sortable column header's link: ascending, or reversed when it is the sort."""
        rest = {k: v for k, v in self._params.items() if k not in ("sort", "dir")}
        prefix = f"{self.table.url}?{urlencode(rest)}&" if rest else f"{self.table.url}?"
        default = (self.table.default_sort, self.table.default_dir)
        urls = {}
        for name in self.table.sorts:
            # the first column of a combined sort turns the whole sort round
            current = self.sort is not None and name == self.sort.name
            if current and self.then:
                turned = "asc" if self.descending else "desc"
                urls[name] = f"{prefix}{urlencode({'sort': self.sort_name, 'dir': turned})}"
                continue
            direction = "asc" if current and self.descending else ("desc" if current else "asc")
            if (name, direction) == default:
                urls[name] = prefix.rstrip("?&")
            elif name == self.table.default_sort:
                urls[name] = f"{prefix}dir={direction}"
            else:
                urls[name] = f"{prefix}sort={_quoted(name)}&dir={direction}"
        return urls

    def then_urls(self) -> dict[str, list[tuple[str, bool]]]:
        """The "then by" links: columns that extend the current sort into one an index
        supports (Table.sort_combinations), each with the directions it may take: (url,
        descending) pairs."""
        if self.sort is None:
            return {}
        rest = {k: v for k, v in self._params.items() if k not in ("sort", "dir")}
        current = self.sort_name or ""
        urls: dict[str, list[tuple[str, bool]]] = {}
        for spelled, keys in self.table.sort_combinations.items():
            if spelled.rpartition(",")[0] == current:
                params = {**rest, "sort": spelled, "dir": self.dir}
                added = keys[-1]
                urls.setdefault(added.column.name, []).append(
                    (f"{self.table.url}?{urlencode(params)}", self.descending != added.flipped)
                )
        for found in urls.values():
            found.sort(key=lambda pair: pair[1])
        return urls


@lru_cache(maxsize=4096)
def _quoted(name: str) -> str:
    """A column name as a query string value (urlencode's spelling), once per name."""
    return quote_plus(name)


def parse_columns(table: Table, params: Mapping[str, str]) -> tuple[Column, ...] | None:
    """The columns shown: `cols=a,b,c`, or the column chooser's `show` boxes (which win)."""
    if "cols" not in params and "show" not in params:
        return None
    getlist = getattr(params, "getlist", None)
    if "show" in params:
        names = list(getlist("show")) if getlist else [params["show"]]
    else:
        names = params["cols"].split(",")
    names = [n.strip() for n in names if n.strip()]
    if not names:
        return None
    unknown = [n for n in names if n not in table.by_name]
    if unknown:
        raise InvalidQuery(f"There is no column {unknown[0][:40]!r} to show.")
    if len(set(names)) > MAX_COLUMNS:
        raise InvalidQuery(f"Show at most {MAX_COLUMNS} columns.")
    chosen = set(names)
    shown = tuple(c for c in table.columns if c.name in chosen)
    return None if shown == table.list_columns else shown


def _parse_column_filters(table: Table, params: Mapping[str, str]) -> tuple[ColumnFilter, ...]:
    if "add_col" in params or any(k.startswith(column_filters.PREFIX) for k in params):
        return column_filters.parse(table, params)
    return ()


def _parse_at(raw: str | None, has_cursor: bool) -> int | None:
    """The position hint: 0 on a first page; None (unknown) on a cursor page without one.
    A hint only, so a bad one is dropped rather than refused."""
    text = (raw or "").strip()
    number = text[1:] if text.startswith("-") else text
    if not number.isascii() or not number.isdigit() or int(number) > MAX_AT:
        return None if has_cursor else 0
    return int(text)


def parse_limit(raw: str | None) -> int:
    if raw is None or raw.strip() == "":
        return DEFAULT_LIMIT
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidQuery(f"The page size must be a whole number from 1 to {MAX_LIMIT}.")
    return int(text)


def parse_search(raw: str | None) -> str:
    text = (raw or "").strip()
    if len(text) > MAX_QUERY_LENGTH:
        raise InvalidQuery(f"The search text is longer than {MAX_QUERY_LENGTH} characters.")
    if not pg_input.valid_text(text):
        raise InvalidQuery("The search text contains a NUL or an invalid character.")
    return text


def like_pattern(text: str) -> str:
    """A case-insensitive substring pattern where %, _ and \\ match themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _parse_offset(table: Table, raw: str | None) -> int:
    text = (raw or "").strip()
    if not text:
        return 0
    if table.keyed:
        raise InvalidQuery("Use the page links (after/before) to move through this list.")
    if not text.isascii() or not text.isdigit() or int(text) > OFFSET_CAP:
        raise InvalidQuery(f"The offset must be a whole number from 0 to {OFFSET_CAP:,}.")
    return int(text)


def _parse_sort(
    table: Table, params: Mapping[str, str]
) -> tuple[Column | None, tuple[SortKey, ...], bool]:
    """`sort=a,-b&dir=d`: `dir` is the first column's direction (the whole sort's); a `-`
    before a column runs it the other way. A `-` before the first column turns the whole
    sort round, so "-a,b" is "a,-b" descending."""
    default = table.default_sort
    key = params.get("sort", "").strip() or default or ""
    if not table.sorts:
        if params.get("sort", "").strip():
            raise InvalidQuery("This list cannot be sorted: the table has no primary key.")
        return None, (), False
    names = [n.strip() for n in key.split(",")]
    turned = names[0].startswith("-")
    if turned:
        names = [n[1:] if n.startswith("-") else "-" + n for n in names]
    if len(names) > 1:
        keys = table.sort_combinations.get(",".join(names))
        if keys is None:
            combined = "; ".join(table.sort_combinations)
            allowed = (
                f"these can be combined (an index supports them): {combined}"
                if combined
                else "no columns of this list can be combined (no index covers several)"
            )
            raise InvalidQuery(f"Cannot sort by {key[:80]!r}; {allowed}.")
        column, then = keys[0].column, keys[1:]
    else:
        found = table.sorts.get(names[0])
        if found is None:
            allowed = ", ".join(table.sorts)
            raise InvalidQuery(f"Cannot sort by {key[:40]!r}; choose one of: {allowed}.")
        column, then = found, ()
    direction = params.get("dir", "").strip().lower() or (
        table.default_dir if names[0] == default and not then and not turned else "asc"
    )
    if direction not in ("asc", "desc"):
        raise InvalidQuery("The sort direction must be 'asc' or 'desc'.")
    return column, then, (direction == "desc") != turned


_ALL = {"", "all", "any"}


def _parse_filters(table: Table, params: Mapping[str, str]) -> tuple[FilterValue, ...]:
    found: list[FilterValue] = []
    for spec in table.filters:
        raw = params.get(spec.param, "")
        text = raw.strip()
        if text.lower() in _ALL:
            continue
        column = table.by_name.get(spec.column)
        if column is None:
            continue
        name = spec.label or column.label
        try:
            value = _filter_value(spec, column, text)
        except ValueError as exc:
            raise InvalidQuery(f"The {name!r} filter: {exc}") from None
        found.append(FilterValue(spec, value, _canonical(spec, value, text)))
    _check_ranges(found)
    return tuple(found)


def _filter_value(spec: Filter, column: Column, text: str) -> Any:
    if spec.kind is FilterKind.BOOLEAN:
        word = text.lower()
        if word in values.TRUE_WORDS:
            return True
        if word in values.FALSE_WORDS:
            return False
        raise ValueError("choose 'true', 'false' or nothing.")
    if spec.kind in (FilterKind.DATE_FROM, FilterKind.DATE_TO):
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError("enter a date like 2024-05-31.") from None
    if spec.kind is FilterKind.CHOICE:
        if column.choices and text not in column.choices:
            lowered = text.lower()
            if lowered in column.choices:
                return lowered
            raise ValueError(f"choose one of: {', '.join(column.choices)}.")
    return values.scalar(column.kind, text, column=column.info)


def _canonical(spec: Filter, value: Any, text: str) -> str:
    if spec.kind is FilterKind.BOOLEAN:
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value) if spec.kind is FilterKind.CHOICE else text


def _check_ranges(found: list[FilterValue]) -> None:
    starts = {f.filter.column: f for f in found if f.filter.kind is FilterKind.DATE_FROM}
    for item in found:
        start = starts.get(item.filter.column)
        if item.filter.kind is FilterKind.DATE_TO and start and start.value > item.value:
            first = start.filter.label or start.filter.param
            last = item.filter.label or item.filter.param
            raise InvalidQuery(f"{first!r} is after {last!r}.")


def _filter_condition(table: Table, item: FilterValue, param: Any) -> str:
    column = table.by_name[item.filter.column]
    kind = item.filter.kind
    if kind is FilterKind.DATE_FROM:
        return f"{column.quoted} >= {param(item.value)}::date"
    if kind is FilterKind.DATE_TO:
        return f"{column.quoted} < {param(item.value)}::date + 1"
    return f"{column.quoted} = {param(item.value)}"


def _column_condition(item: ColumnFilter, param: Any) -> str:
    column = item.column.quoted
    if item.op == "empty":
        blank = f"{column} IS NULL"
        if item.column.kind is Kind.TEXT:
            blank = f"({column} IS NULL OR {column} = '')"
        return blank if item.value else f"NOT {blank}"
    if item.op == "contains":
        return f"{column} ILIKE {param(like_pattern(item.value))}"
    if item.op == "in":
        return f"{column} = ANY({param(item.value)}::{item.column.info.type_sql}[])"
    if item.column.kind in column_filters.DATE_KINDS:
        if item.op == "gte":
            return f"{column} >= {param(item.value)}::date"
        return f"{column} < {param(item.value)}::date + 1"
    operator = {"eq": "=", "gte": ">=", "lte": "<="}[item.op]
    return f"{column} {operator} {param(item.value)}"
