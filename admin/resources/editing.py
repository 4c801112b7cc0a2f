"""A submitted record form: each field's text read, parsed for its column and checked, and
the view of a conflict (what was typed against what was saved meanwhile)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from starlette.exceptions import HTTPException

from admin.resources import keys, values
from admin.resources.model import Column, Table
from admin.resources.tables import Kind

STRIPPED_WIDGETS = frozenset({"text", "number", "decimal", "date", "datetime", "reference"})
MAX_TOKEN_LENGTH = 20


class FieldError(str):
    """A field's message that names another record (the one holding a unique value)."""

    link: str | None = None
    noun: str = ""

    @classmethod
    def linking(cls, message: str, link: str, noun: str) -> FieldError:
        error = cls(message)
        error.link, error.noun = link, noun
        return error


@dataclass
class Submitted:
    texts: dict[str, str]  # as typed, to show again
    values: dict[str, Any]  # parsed: every field for a new record, changed fields for an edit
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors


def field_text(form: Mapping[str, Any], column: Column) -> str | None:
    """The field's text, None when the form did not carry the field at all. A checkbox
    comes with a hidden "false" before it; the last value wins."""
    raw = _as_sent(form, column)
    if raw is None:
        return None
    return raw.strip() if column.widget in STRIPPED_WIDGETS else raw


def _as_sent(form: Mapping[str, Any], column: Column) -> str | None:
    raw = form.get(column.input_name)
    if raw is None or not isinstance(raw, str):
        return None
    # browsers send a textarea's line breaks as CR LF
    return raw.replace("\r\n", "\n")


def read(
    table: Table,
    form: Mapping[str, Any],
    *,
    current: Mapping[str, Any] | None,
    zone: tzinfo,
    columns: Sequence[Column] | None = None,
) -> Submitted:
    """Parse and check the form's fields. For an edit (`current` given) a field whose text
    is what the form showed is left out: unchanged, so it round-trips exactly."""
    _check_fields_still_exist(table, form)
    result = Submitted(texts={}, values={})
    for column in columns if columns is not None else table.form_columns:
        if not column.editable:
            continue
        text = field_text(form, column)
        if text is None:
            if current is not None:
                continue
            text = ""
        result.texts[column.name] = text
        if current is not None:
            shown = values.form_text(column.info, current[column.name], zone=zone)
            # compared before stripping too: "  a " shown and sent back is no change
            if text == shown or _as_sent(form, column) == shown:
                continue
        message = _check(column, text, zone, result, creating=current is None)
        if message:
            result.errors[column.name] = message
    return result


def required_message(column: Column) -> str:
    return f"{column.label} is required."


def _check(
    column: Column, text: str, zone: tzinfo, result: Submitted, *, creating: bool
) -> str | None:
    info = column.info
    if text == "" and creating and info.has_default and column.kind is not Kind.BOOLEAN:
        return None  # the column's default
    if text.strip() == "" and column.required:
        # before the format rule: an empty field is missing, not malformed
        return required_message(column)
    if text == "" and column.kind is Kind.TEXT and info.nullable:
        value = None
    else:
        try:
            value = values.parse(info, text, zone=zone)
        except ValueError as exc:
            return str(exc)
    if value is None and not info.nullable:
        if creating and info.has_default:
            return None
        return required_message(column)
    if column.field.validate is not None and value is not None:
        message = column.field.validate(value)
        if message:
            return message
    result.values[column.name] = value
    return None


def hint(column: Column, zone_name: str = "UTC") -> str:
    """What the field expects, shown before anything is typed: the declaration's help, else
    its rule's hint, else what the column's type takes."""
    if column.field.help:
        return column.field.help
    rule_hint = getattr(column.field.validate, "hint", None)
    if isinstance(rule_hint, str):
        return rule_hint
    info, kind = column.info, column.kind
    if column.choices or kind is Kind.BOOLEAN or column.reference is not None:
        return ""
    if kind is Kind.INTEGER:
        return "A whole number."
    if kind is Kind.NUMERIC:
        if info.numeric_scale:
            example = "12." + "5" + "0" * (info.numeric_scale - 1)
            return f"A number with up to {info.numeric_scale} decimals, like {example}."
        return "A number, like 12.5."
    if kind is Kind.FLOAT:
        return "A number, like 1.5."
    if kind is Kind.DATE:
        return "A date, YYYY-MM-DD."
    if kind is Kind.TIMESTAMP:
        return "YYYY-MM-DD HH:MM."
    if kind is Kind.TIMESTAMPTZ:
        return f"YYYY-MM-DD HH:MM, {zone_name} time."
    if kind is Kind.UUID:
        return "A UUID, like 123e4567-e89b-12d3-a456-426614174000."
    if kind is Kind.ARRAY:
        return "One value per line; the line NULL is an empty value."
    if kind is Kind.JSON:
        return "JSON, checked when you leave the field."
    if column.widget == "email":
        return "Like name@example.com."
    if info.max_length:
        return f"At most {info.max_length:,} characters."
    return ""


FIELDS = "__fields"


def shown_fields(columns: Sequence[Column]) -> str:
    """The names of the fields a form shows, for `__fields`: it says which columns it was
    built for, so a column dropped while it was open is noticed on save."""
    return keys.encode([c.name for c in columns])


def _check_fields_still_exist(table: Table, form: Mapping[str, Any]) -> None:
    raw = form.get(FIELDS)
    if not isinstance(raw, str) or not raw:
        return
    try:
        names = [keys.tilde_decode(part) for part in raw.split(",")]
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "The form's list of fields is not valid.") from None
    gone = [name for name in names if name not in table.by_name]
    if gone:
        listed = ", ".join(repr(name[:60]) for name in gone[:5])
        verb = "exists" if len(gone) == 1 else "exist"
        raise HTTPException(
            409,
            f"The table {table.info.name!r} changed while this form was open: {listed} no"
            f" longer {verb}. Nothing was saved; reload the form.",
        )


def parse_token(raw: Any) -> str:
    """The row version (or xmin) the form was read at; 400 when missing or malformed."""
    text = str(raw or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > MAX_TOKEN_LENGTH:
        raise HTTPException(400, "The form is missing the version of the row it was read at.")
    return text


def conflict(
    columns: Sequence[Column], mine: Mapping[str, str], theirs: Mapping[str, Any], zone: tzinfo
) -> list[dict[str, Any]]:
    """Field by field: what was submitted against what is stored now."""
    rows = []
    for column in columns:
        if column.name not in mine:
            continue
        saved = values.form_text(column.info, theirs[column.name], zone=zone)
        rows.append(
            {
                "name": column.name,
                "label": column.label,
                "mine": mine[column.name],
                "theirs": saved,
                "differs": mine[column.name] != saved,
            }
        )
    return rows
