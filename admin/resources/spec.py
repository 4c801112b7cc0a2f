"""What a declaration may say about a table: data only, frozen.

A declaration states only what differs from what the catalog says (labels, list columns,
search, filters, validators, cells, bulk actions, permissions, the label column).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg


class Action(enum.Enum):
    VIEW = "view"
    ADD = "add"
    CHANGE = "change"
    DELETE = "delete"
    EXPORT = "export"
    IMPORT = "import"


STAFF = "staff"
ADMIN = "admin"
EVERYONE = frozenset({STAFF, ADMIN})
ADMINS = frozenset({ADMIN})

# A declared table: staff keep the shop running; moving data in bulk is for admins.
CURATED = {
    Action.VIEW: EVERYONE,
    Action.ADD: EVERYONE,
    Action.CHANGE: EVERYONE,
    Action.DELETE: EVERYONE,
    Action.EXPORT: ADMINS,
    Action.IMPORT: ADMINS,
}
# A table nobody declared: admins only, until a declaration says otherwise.
INTROSPECTED = dict.fromkeys(Action, ADMINS)

Validator = Callable[[Any], str | None]
ParamFn = Callable[[object], str]


@dataclass(frozen=True)
class Field:
    """How one column is labelled, shown, edited and checked."""

    label: str | None = None
    cell: str | None = None  # a cell renderer other than the kind's: "badge", "email", "code"
    widget: str | None = None  # "textarea" for long text
    validate: Validator | None = None  # the parsed value -> an error message, or None
    editable: bool | None = None  # None: what the catalog allows
    help: str | None = None
    placeholder: str | None = None


class FilterKind(enum.Enum):
    BOOLEAN = "boolean"  # all / yes / no
    CHOICE = "choice"  # one of the column's choices
    EQUALS = "equals"  # a value of the column's type (foreign keys: the referenced id)
    DATE_FROM = "date_from"  # on or after a day
    DATE_TO = "date_to"  # on or before a day


@dataclass(frozen=True)
class Filter:
    param: str  # the query parameter
    column: str
    kind: FilterKind
    label: str | None = None


@dataclass(frozen=True)
class Search:
    """Free-text search. `expression` is SQL over the table's own columns; give it the exact
    text of a trigram index's expression so the planner uses that index. `condition`
    builds the whole WHERE condition instead: (text, param) -> SQL, `param(value)` binding a
    value and returning its placeholder."""

    expression: str | None = None
    condition: Callable[[str, ParamFn], str] | None = None
    placeholder: str = ""
    # look through the list in its own order first, whatever the planner expects (for
    # searches that usually match many rows where its estimate is poor), testing each row
    # with the condition on its own: a condition that looks rows up in another table then
    # probes that table per row instead of first collecting every match there
    in_order_first: bool = False


@dataclass(frozen=True)
class BulkAction:
    """An action on the selected rows (or every row matching the filter).

    With `column`, it sets that column: to `value`, or to a value chosen from the column's
    choices when `value` is None. With `delete`, it deletes the rows.
    """

    name: str
    label: str
    column: str | None = None
    value: Any = None
    delete: bool = False

    @property
    def permission(self) -> Action:
        return Action.DELETE if self.delete else Action.CHANGE


DELETE_ACTION = BulkAction("delete", "Delete", delete=True)

ExtraContext = Callable[[asyncpg.Connection, Mapping[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Resource:
    """One table's declaration. Everything left out comes from the catalog."""

    table: str
    schema: str = "public"
    label: str | None = None  # one record: "user"
    plural: str | None = None  # the list: "users"
    list_columns: tuple[str, ...] | None = None
    form_columns: tuple[str, ...] | None = None
    fields: Mapping[str, Field] = field(default_factory=dict)
    search: Search | None = None
    filters: tuple[Filter, ...] | None = None
    bulk_actions: tuple[BulkAction, ...] = (DELETE_ACTION,)
    permissions: Mapping[Action, frozenset[str]] = field(default_factory=lambda: dict(CURATED))
    label_column: str | None = None  # what a reference to a record shows
    default_sort: str | None = None
    default_dir: str = "asc"
    # sorts on several columns allowed besides those an index leads with: ("status", "total")
    sort_combinations: tuple[tuple[str, ...], ...] = ()
    # a one-field form on the record page, posted to /<table>/<key>/<quick_field>
    quick_field: str | None = None
    # more for the record page's template (an override's own data)
    extra_context: ExtraContext | None = None
