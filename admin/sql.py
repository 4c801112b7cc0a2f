"""SQL identifiers: always double-quoted, embedded quotes doubled."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
