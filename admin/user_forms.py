"""The user form: parse and validate submitted fields, map constraint errors to field errors."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from admin import users
from admin.forms import has_control_characters
from admin.pg_input import valid_text

USERNAME = re.compile(r"[a-z0-9._-]{3,50}")
# deliberately loose: one @, something on both sides, a dot in the domain, no spaces
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
FULL_NAME_MAX = 200
EMAIL_MAX = 254
FIELDS = ("username", "email", "full_name", "is_active")
LABELS = {"username": "Username", "email": "Email", "full_name": "Full name", "is_active": "Active"}


@dataclass
class UserForm:
    """Submitted values (kept as typed, for re-display) and the errors found in them."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors


def _truthy(raw: str | None) -> bool:
    return (raw or "").strip().lower() in {"1", "true", "on", "yes"}


def parse(form: Mapping[str, Any]) -> UserForm:
    """Read the fields; check each one's syntax (uniqueness is the database's job)."""
    values = {
        "username": str(form.get("username", "")).strip(),
        "email": str(form.get("email", "")).strip(),
        "full_name": str(form.get("full_name", "")).strip(),
        "is_active": _truthy(form.get("is_active")),
    }
    result = UserForm(values)
    for name in ("username", "email", "full_name"):
        message = field_syntax_error(name, values[name])
        if message:
            result.errors[name] = message
    return result


def field_syntax_error(name: str, value: str) -> str | None:
    if name == "username":
        if not USERNAME.fullmatch(value):
            return "3 to 50 characters: lowercase letters, digits, '.', '_' or '-'."
    elif name == "email":
        if not value:
            return "Enter an email address."
        if len(value) > EMAIL_MAX or not EMAIL.fullmatch(value):
            return "Enter a valid email address, like name@example.com."
        if has_control_characters(value) or not valid_text(value):
            return "The email address contains control or invisible characters."
    elif name == "full_name":
        if len(value) > FULL_NAME_MAX:
            return f"At most {FULL_NAME_MAX} characters."
        # format characters (zero-width joiners) belong in some scripts' names; controls do not
        if any(unicodedata.category(ch) == "Cc" for ch in value) or not valid_text(value):
            return "The name contains control characters (such as NUL or a tab)."
    return None


async def field_error(
    conn: asyncpg.Connection, name: str, value: str, *, user_id: int | None
) -> str | None:
    """Syntax, then uniqueness, for the inline check when a field is left."""
    value = value.strip()
    message = field_syntax_error(name, value)
    if message:
        return message
    if name == "username" and await users.username_taken(conn, value, except_id=user_id):
        return "This username is taken."
    if name == "email" and await users.email_taken(conn, value, except_id=user_id):
        return "Another user has this email address."
    return None


def constraint_errors(exc: asyncpg.IntegrityConstraintViolationError) -> dict[str, str]:
    """The field a unique or check violation belongs to, with a message for it."""
    constraint = getattr(exc, "constraint_name", "") or ""
    if isinstance(exc, asyncpg.UniqueViolationError):
        if "email" in constraint:
            return {"email": "Another user has this email address."}
        if "username" in constraint:
            return {"username": "This username is taken."}
    if isinstance(exc, asyncpg.CheckViolationError):
        for name in ("username", "email", "full_name"):
            if name in constraint:
                return {name: "This value is not allowed."}
    return {"__all__": "The database refused these values."}


def changed_fields(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Field-by-field view of a conflict: what was submitted against what is stored now."""
    return [
        {
            "name": name,
            "label": LABELS[name],
            "mine": mine.get(name),
            "theirs": theirs.get(name),
            "differs": mine.get(name) != theirs.get(name),
        }
        for name in FIELDS
    ]
