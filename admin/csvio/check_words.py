"""A table's CHECK constraint in plain words, for the problems an import reports.

The common shapes (a bound on a number, a text that must not be empty, a length limit,
each optionally allowing an empty cell) are said in words; any other rule is named by its
constraint's name, never shown as SQL.
"""

from __future__ import annotations

import re

_NUMBER = r"\(?'?(-?\d+(?:\.\d+)?)'?\)?(?:::[a-z ]+)?"
_COLUMN = r'"?([A-Za-z_][A-Za-z0-9_]*)"?'
_WORDS = {
    ">": "must be greater than {}",
    ">=": "must be at least {}",
    "<": "must be less than {}",
    "<=": "must be at most {}",
    "<>": "must not be {}",
}
_BOUND = re.compile(rf"\(*{_COLUMN}(?:::[a-z ]+)? (>=|<=|<>|>|<) {_NUMBER}\)*")
_LENGTH = re.compile(rf"\(*(?:char_)?length\({_COLUMN}\) (>=|<=|<>|>|<) (\d+)\)*")
_NOT_EMPTY = re.compile(rf"\(*{_COLUMN}(?:::text)? <> ''(?:::text)?\)*")
_OR_NULL = re.compile(rf"\(*{_COLUMN} IS NULL\) OR (.*)\)", re.DOTALL)


def check_words(condition: str, constraint: str) -> str:
    """`condition`: the CHECK's expression as pg_get_constraintdef writes it."""
    text = condition.strip()
    allow_empty = _OR_NULL.fullmatch(text)
    if allow_empty:
        text = allow_empty.group(2).strip()
    words = _simple(text)
    if words is None:
        return f"is not allowed by the table's rule {constraint}"
    return words + (" (or be left empty)" if allow_empty else "")


def _simple(text: str) -> str | None:
    if (found := _NOT_EMPTY.fullmatch(text)) is not None:
        return "must not be empty"
    if (found := _LENGTH.fullmatch(text)) is not None:
        operator, limit = found.group(2), found.group(3)
        return (
            _WORDS[operator]
            .format(f"{limit} characters long")
            .replace("must be less than", "must be shorter than")
        )
    if (found := _BOUND.fullmatch(text)) is not None:
        return _WORDS[found.group(2)].format(found.group(3))
    return None
