"""Field rules shared by declarations: each takes the parsed value, returns a message or None."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from admin.resources.spec import Validator


def no_control_characters(value: Any) -> str | None:
    # format characters (zero-width joiners) belong in some scripts' names; controls do not
    if isinstance(value, str) and any(unicodedata.category(ch) == "Cc" for ch in value):
        return "The text contains control characters (such as NUL or a tab)."
    return None


def hinted(rule: Validator, hint: str) -> Validator:
    """The rule, carrying the hint its form field shows before anything is typed."""
    rule.hint = hint  # type: ignore[attr-defined]
    return rule


def max_length(limit: int) -> Validator:
    def check(value: Any) -> str | None:
        if isinstance(value, str) and len(value) > limit:
            return f"At most {limit} characters."
        return no_control_characters(value)

    return hinted(check, f"At most {limit:,} characters.")


def amount_between(low: Decimal, high: Decimal) -> Validator:
    def check(value: Any) -> str | None:
        if not isinstance(value, Decimal) or not value.is_finite() or not low <= value <= high:
            return f"Enter an amount from {low:,} to {high:,}."
        return None

    return hinted(check, f"An amount from {low:,} to {high:,}, like 12.50.")


def whole_between(low: int, high: int) -> Validator:
    def check(value: Any) -> str | None:
        if not isinstance(value, int) or not low <= value <= high:
            return f"Enter a whole number from {low:,} to {high:,}."
        return None

    return hinted(check, f"A whole number from {low:,} to {high:,}.")


def all_of(*rules: Callable[[Any], str | None]) -> Validator:
    def check(value: Any) -> str | None:
        for rule in rules:
            message = rule(value)
            if message:
                return message
        return None

    return check
