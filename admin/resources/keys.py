"""A record's primary key as one URL path segment, and back.

Each key part is tilde-encoded (Datasette's scheme: every byte outside A-Z a-z 0-9 _ - as
~XX), then the parts are joined with commas. Percent-encoding would not do: the server
decodes %2F and %2C before routing, so a slash or comma in a key would split the segment.
A single integer key stays as it is: /users/42. A key spelled like one of the list's own
pages (/<table>/new, /<table>/count...) has its first character encoded (`~6Eew`), so that
/<table>/<key> still reaches the record.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from admin.resources import values
from admin.resources.tables import ColumnInfo

_PLAIN = re.compile(rb"[A-Za-z0-9_-]")
_TILDE = re.compile(r"~([0-9A-F]{2})")
MAX_KEY_LENGTH = 2000
# the second path segments of the list's own routes (admin/resources/routes.py builds them
# from this set, so a route cannot be added without its key being kept clear of it)
LIST_SEGMENTS = frozenset(
    {"new", "count", "filter-builder", "column-chooser", "views", "lookup", "matching"}
    | {"validate", "bulk", "import"}
)


_ALL_PLAIN = re.compile(r"[A-Za-z0-9_-]*")


def tilde_encode(text: str) -> str:
    if _ALL_PLAIN.fullmatch(text):
        return text
    return "".join(
        chr(b) if _PLAIN.fullmatch(bytes([b])) else f"~{b:02X}" for b in text.encode("utf-8")
    )


def tilde_decode(text: str) -> str:
    """ValueError when `text` has a stray tilde or is not UTF-8 once decoded."""
    if "~" in _TILDE.sub("", text):
        raise ValueError(text)
    raw = bytearray()
    position = 0
    for match in _TILDE.finditer(text):
        raw += text[position : match.start()].encode("utf-8")
        raw.append(int(match.group(1), 16))
        position = match.end()
    raw += text[position:].encode("utf-8")
    return raw.decode("utf-8")


def part_text(column: ColumnInfo, value: Any) -> str:
    return values.key_text(column, value)


def encode(parts: Sequence[str]) -> str:
    segment = ",".join(tilde_encode(p) for p in parts)
    if segment in LIST_SEGMENTS:
        return f"~{ord(segment[0]):02X}{segment[1:]}"
    return segment


def decode(segment: str, columns: Sequence[ColumnInfo]) -> tuple[Any, ...]:
    """The typed key values of `segment`; ValueError with a reason when it is not a key."""
    if not columns:
        raise ValueError("This table has no primary key: its rows have no page of their own.")
    if len(segment) > MAX_KEY_LENGTH:
        raise ValueError("The record key is too long.")
    pieces = segment.split(",")
    if len(pieces) != len(columns):
        names = ", ".join(c.name for c in columns)
        raise ValueError(f"The record key must have {len(columns)} part(s): {names}.")
    typed = []
    for piece, column in zip(pieces, columns, strict=True):
        try:
            text = tilde_decode(piece)
            typed.append(values.scalar(column.kind, text, column=column))
        except (ValueError, UnicodeDecodeError):
            raise ValueError(f"{piece[:40]!r} is not a valid {column.name}.") from None
    return tuple(typed)
