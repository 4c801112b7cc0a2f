"""A record's audit entries in plain words, and the values an earlier version would restore.

Audit snapshots are JSON (`store.snapshot`): times as ISO text, numerics and UUIDs as strings.
Restoring turns them back into typed values for the form's editable columns only, so a
restore writes exactly what an edit of those fields could have written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from admin.audit import Entry
from admin.resources import values
from admin.resources.cells import moment
from admin.resources.model import BOOKKEEPING, Column, Table, humanize
from admin.resources.tables import Kind

STATES = ("before", "after")
# The key of a revert entry's `after` that names the entry and state it restored.
RESTORED = "__restored"
ACTIONS = {
    "create": "created",
    "update": "updated",
    "delete": "deleted",
    "revert": "restored an earlier version",
    "csv_import": "imported",
}
EMPTY = "(empty)"
BLANK = "(blank)"


@dataclass(frozen=True)
class Change:
    label: str
    old: str | None  # None: the field had no value before (a creation)
    new: str | None  # None: the field has no value after (a deletion)


@dataclass(frozen=True)
class Restore:
    """What restoring one side of an entry would do to the record as it is now."""

    state: str
    labels: tuple[str, ...]  # the fields that would change

    @property
    def button(self) -> str:
        fields = _join(self.labels)
        if self.state == "before":
            return f"Restore {fields} as before this change"
        return f"Restore {fields} as right after this change"


@dataclass(frozen=True)
class EntryView:
    entry: Entry
    action: str
    when: str
    who: str
    changes: list[Change]
    restored: tuple[int, str] | None  # for a revert: (entry id, state) it restored
    restore: Restore | None = None
    same_as_now: bool = False


@dataclass
class Restored:
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _join(labels: tuple[str, ...]) -> str:
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + " and " + labels[-1]


def label_of(table: Table, name: str) -> str:
    column = table.by_name.get(name)
    return column.label if column is not None else humanize(name)


def action_words(table: Table, action: str) -> str:
    """`set_status` -> "changed status", `bulk_deactivate` -> "Deactivate (bulk action)"."""
    if action in ACTIONS:
        return ACTIONS[action]
    if action.startswith("bulk_"):
        name = action[len("bulk_") :]
        declared = next((a for a in table.spec.bulk_actions if a.name == name), None)
        label = declared.label if declared is not None else humanize(name)
        return f"{label.lower()} (bulk action)"
    if action.startswith("set_"):
        return f"changed {label_of(table, action[len('set_') :]).lower()}"
    return humanize(action).lower()


def words(column: Column | None, value: Any, zone: tzinfo) -> str:
    """A snapshot value as a person reads it."""
    if value is None:
        return EMPTY
    if value == "":
        return BLANK
    if isinstance(value, bool):
        return "yes" if value else "no"
    kind = column.kind if column is not None else None
    if kind is Kind.TIMESTAMPTZ and isinstance(value, str):
        try:
            return moment(datetime.fromisoformat(value), zone)
        except ValueError:
            return value
    if isinstance(value, list) and kind is Kind.ARRAY:
        return ", ".join(EMPTY if v is None else str(v) for v in value) or "(none)"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


def _shown(name: str) -> bool:
    return name not in BOOKKEEPING and not name.startswith("__")


def changes(table: Table, entry: Entry, zone: tzinfo) -> list[Change]:
    """Field by field, bookkeeping left out: what this entry changed."""
    old = entry.before if isinstance(entry.before, dict) else None
    new = entry.after if isinstance(entry.after, dict) else None
    # jsonb keeps keys in its own order: show them in the table's
    position = {c.name: i for i, c in enumerate(table.columns)}
    names = sorted(
        (n for n in dict.fromkeys([*(old or {}), *(new or {})]) if _shown(n)),
        key=lambda n: (position.get(n, len(position)), n),
    )
    result = []
    for name in names:
        column = table.by_name.get(name)
        label = label_of(table, name)
        if old is None and new is not None:
            if new.get(name) is not None:
                result.append(Change(label, None, words(column, new.get(name), zone)))
        elif new is None and old is not None:
            if old.get(name) is not None:
                result.append(Change(label, words(column, old.get(name), zone), None))
        elif old is not None and new is not None and old.get(name) != new.get(name):
            before, after = old.get(name), new.get(name)
            result.append(Change(label, words(column, before, zone), words(column, after, zone)))
    return result


def _restored(entry: Entry) -> tuple[int, str] | None:
    marker = entry.after.get(RESTORED) if isinstance(entry.after, dict) else None
    if isinstance(marker, dict) and isinstance(marker.get("entry"), int):
        return marker["entry"], str(marker.get("state", "before"))
    return None


def describe(
    table: Table, entry: Entry, zone: tzinfo, current: Mapping[str, Any] | None
) -> EntryView:
    """One entry for the history page; with the record's `current` row, what restoring it
    would change."""
    view = EntryView(
        entry=entry,
        action=action_words(table, entry.action),
        when=moment(entry.at, zone),
        who=entry.staff_username or "someone outside the panel",
        changes=changes(table, entry, zone),
        restored=_restored(entry),
    )
    if current is None:
        return view
    state = default_state(entry)
    snap = side(entry, state) if state else None
    if state is None or snap is None or not restorable(table, snap):
        return view
    restored = restore_values(table, snap)
    differing = [
        c.label
        for c in table.form_columns
        if c.name in restored.errors
        or (c.name in restored.values and restored.values[c.name] != current[c.name])
    ]
    if not differing:
        return replace(view, same_as_now=True)
    return replace(view, restore=Restore(state, tuple(differing)))


def default_state(entry: Entry) -> str | None:
    """The version an entry's button restores: the one before a change, or the one a
    creation made."""
    if isinstance(entry.before, dict):
        return "before"
    if isinstance(entry.after, dict):
        return "after"
    return None


def side(entry: Entry, state: str) -> dict[str, Any] | None:
    snap = entry.before if state == "before" else entry.after
    return snap if isinstance(snap, dict) else None


def restorable(table: Table, snap: Mapping[str, Any]) -> list[Column]:
    """The form's editable columns this snapshot holds a value for; never the primary key,
    so a restore changes a record's values and not which record it is."""
    keys = {c.name for c in table.primary_key}
    return [c for c in table.form_columns if c.editable and c.name in snap and c.name not in keys]


def restore_values(table: Table, snap: Mapping[str, Any]) -> Restored:
    """The snapshot's values for the form's editable columns, typed; a value the column no
    longer accepts becomes an error for that field."""
    result = Restored()
    for column in restorable(table, snap):
        try:
            result.values[column.name] = typed(column, snap[column.name])
        except ValueError as exc:
            result.errors[column.name] = f"The saved value no longer fits: {exc}"
    return result


def typed(column: Column, raw: Any) -> Any:
    """A snapshot value back as the value the column takes; ValueError when it cannot be."""
    if raw is None:
        return None
    kind = column.kind
    if kind is Kind.JSON:
        return raw
    if kind is Kind.ARRAY:
        if not isinstance(raw, list):
            raise ValueError("a list was expected.")
        element = column.info.element_kind
        return [_element(element, v) for v in raw]
    if isinstance(raw, str):
        if kind is Kind.TEXT or kind is Kind.ENUM:
            return values.scalar(kind, raw, column=column.info)
        return values.parse(column.info, raw)
    if kind is Kind.NUMERIC and isinstance(raw, int | float) and not isinstance(raw, bool):
        try:
            return Decimal(str(raw))
        except InvalidOperation:
            raise ValueError("a number was expected.") from None
    if kind is Kind.FLOAT and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    return raw


def _element(kind: Kind | None, raw: Any) -> Any:
    if raw is None or not isinstance(raw, str) or kind in (None, Kind.TEXT, Kind.ENUM):
        return raw
    return values.scalar(kind, raw)
