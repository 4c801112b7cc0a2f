"""Users: the shop's customers."""

from __future__ import annotations

import re
from typing import Any

from admin.declarations.rules import max_length
from admin.pg_input import valid_text
from admin.resources.spec import (
    DELETE_ACTION,
    BulkAction,
    Field,
    Filter,
    FilterKind,
    Resource,
    Search,
)

# The exact expression of the trigram index users_search_trgm; the planner only uses the
# index when the query repeats it character for character.
SEARCH_EXPRESSION = "(username || ' ' || email || ' ' || full_name)"
USERNAME = re.compile(r"[a-z0-9._-]{3,50}")
# deliberately loose: one @, something on both sides, a dot in the domain, no spaces
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
EMAIL_MAX = 254


def username_rule(value: Any) -> str | None:
    if not isinstance(value, str) or not USERNAME.fullmatch(value):
        return "3 to 50 characters: lowercase letters, digits, '.', '_' or '-'."
    return None


def email_rule(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "Enter an email address."
    if len(value) > EMAIL_MAX or not EMAIL.fullmatch(value):
        return "Enter a valid email address, like name@example.com."
    if not valid_text(value) or any(not ch.isprintable() for ch in value):
        return "The email address contains control or invisible characters."
    return None


USERS = Resource(
    table="users",
    label="user",
    plural="users",
    list_columns=("id", "username", "email", "full_name", "is_active", "created_at"),
    form_columns=("username", "email", "full_name", "is_active"),
    fields={
        "username": Field(
            validate=username_rule,
            help="3 to 50 characters: lowercase letters, digits, '.', '_' or '-'.",
        ),
        "email": Field(widget="email", validate=email_rule, help="Like name@example.com."),
        "full_name": Field(label="Full name", validate=max_length(200)),
        "is_active": Field(label="Active", cell="active"),
        "created_at": Field(label="Created"),
        "updated_at": Field(label="Updated"),
    },
    search=Search(expression=SEARCH_EXPRESSION, placeholder="Search username, email, name"),
    filters=(Filter("active", "is_active", FilterKind.BOOLEAN, "Active"),),
    bulk_actions=(
        BulkAction("activate", "Activate", column="is_active", value=True),
        BulkAction("deactivate", "Deactivate", column="is_active", value=False),
        DELETE_ACTION,
    ),
    label_column="username",
)
