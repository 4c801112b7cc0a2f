"""Row ids typed into URLs and forms of the panel's own pages (staff, audit log)."""

from __future__ import annotations

from admin import pg_input


class InvalidId(ValueError):
    """Not a positive whole number that fits in bigint; the message is shown (400)."""


def parse_id(raw: str) -> int:
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= pg_input.MAX_BIGINT:
        raise InvalidId(f"{raw[:40]!r} is not a valid id; ids are positive whole numbers.")
    return int(text)
