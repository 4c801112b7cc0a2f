"""Spreadsheet-formula protection for exported text cells (OWASP "CSV injection").

A spreadsheet runs a cell as a formula when its first character, after any leading
whitespace, is = + - @ (or their fullwidth and small forms, which spreadsheets fold to
ASCII), and some take a leading tab, CR or LF as the start of one. Such a cell is exported
with a ' in front, which spreadsheets show as text and do not display.
"""

from __future__ import annotations

# the formula starts and the control characters a spreadsheet treats alike
TRIGGERS = "=+-@\t\r\n" + "\uff1d\uff0b\uff0d\uff20" + "\ufe66\ufe62\ufe63\ufe6b"
# whitespace (and invisible characters) a spreadsheet skips before looking for a formula
LEADING_SPACE = (
    " \v\f\x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200E))
    + "\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"
)


def needs_quote(value: str) -> bool:
    """The rule in Python, for checking the SQL below (and values built outside COPY)."""
    rest = value.lstrip(LEADING_SPACE)
    return bool(rest) and rest[0] in TRIGGERS


def _codes(characters: str) -> str:
    return ", ".join(str(ord(c)) for c in characters)


def _unicode_literal(characters: str) -> str:
    """A U&'' literal, so the SQL text itself stays ASCII whatever the characters are."""
    return "U&'" + "".join(f"\\{ord(c):04X}" for c in characters) + "'"


_TRIGGER_CODES = _codes(TRIGGERS)
_SPACE_CODES = _codes(LEADING_SPACE)
_SPACES = _unicode_literal(LEADING_SPACE)


def neutralised(column_sql: str) -> str:
    """SQL for the column's value with a ' in front when a spreadsheet would run it.

    ascii() of the first character decides nearly every cell without copying it; only a
    cell starting with whitespace pays for ltrim().
    """
    first = f"ascii({column_sql})"
    return (
        f"CASE WHEN {first} IN ({_TRIGGER_CODES}) OR ({first} IN ({_SPACE_CODES})"
        f" AND ascii(ltrim({column_sql}, {_SPACES})) IN ({_TRIGGER_CODES}))"
        f" THEN '''' || {column_sql} ELSE {column_sql} END"
    )
