"""Where a keyset page sits in its list: "401-450 of about 200,000".

Keyset pages know no offset, so the page links carry one as a hint (`at`, the first row's
position: from the start, or negative from the end after the last-page link). Rows added or
removed meanwhile make it approximate, as the total already is when it is an estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from admin.resources.query import ListQuery
from admin.resources.reads import Page, Total

PAGE_SIZES = (25, 50, 100, 200)


@dataclass(frozen=True)
class Position:
    first: int | None  # 1-based, None when not known
    last: int | None
    approximate: bool  # counted from the end of an estimated total
    next_at: int | None  # the hints the Next and Previous links carry
    prev_at: int | None


def position(query: ListQuery, page: Page, total: Total | None) -> Position:
    shown = len(page.rows)
    at = query.at
    if query.last and at is None:
        at = -shown
    if query.offset:
        at = query.offset
    if at is None:
        return Position(None, None, False, None, None)
    if at < 0 and total is not None and total.exact:
        at = max(0, total.value + at)
    if at >= 0:
        first = at + 1
        return Position(first, at + shown, False, at + shown, max(0, at - query.limit))
    from_end = -at
    next_at = -(from_end - shown) if from_end > shown else None
    prev_at = -(from_end + query.limit)
    if total is None:
        return Position(None, None, False, next_at, prev_at)
    first = max(1, total.value - from_end + 1)
    return Position(first, first + shown - 1, True, next_at, prev_at)


def page_sizes(limit: int) -> tuple[int, ...]:
    """The page-size choices, with the current one when it came from a hand-made URL."""
    return PAGE_SIZES if limit in PAGE_SIZES else tuple(sorted({*PAGE_SIZES, limit}))
