"""Counts in words: "1 user", "3 users", "1,204 order items"."""

from __future__ import annotations


def plural(word: str, count: int, many: str | None = None) -> str:
    """`word` as it reads after `count`: English's -s (or -es, -ies), or `many` when given."""
    if count == 1:
        return word
    if many is not None:
        return many
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    return word + "s"


def counted(count: int, word: str, many: str | None = None) -> str:
    """The count with thousands separators and the word in the right number."""
    return f"{count:,} {plural(word, count, many)}"
