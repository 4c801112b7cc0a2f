"""The users table: list query (filters, sort, keyset), reads and writes with version checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from admin.listing import (
    Cursor,
    InvalidQuery,
    Kind,
    SortColumn,
    like_pattern,
    order_by,
    parse_cursors,
    parse_limit,
    parse_search,
    parse_sort,
)

# The exact expression of the trigram index users_search_trgm; the planner only uses the
# index when the query repeats it character for character.
SEARCH_EXPRESSION = "(username || ' ' || email || ' ' || full_name)"

SORT_COLUMNS: dict[str, SortColumn] = {
    c.key: c
    for c in (
        SortColumn("id", "id", Kind.INT),
        SortColumn("username", "username", Kind.TEXT),
        SortColumn("email", "email", Kind.TEXT),
        SortColumn("full_name", "full_name", Kind.TEXT),
        SortColumn("is_active", "is_active", Kind.BOOL),
        SortColumn("created_at", "created_at", Kind.TIMESTAMP),
    )
}
DEFAULT_SORT = "id"
DEFAULT_DIR = "asc"

_ACTIVE_VALUES = {
    "": None,
    "all": None,
    "true": True,
    "1": True,
    "yes": True,
    "false": False,
    "0": False,
    "no": False,
}


def parse_active(raw: str | None) -> bool | None:
    text = (raw or "").strip().lower()
    if text not in _ACTIVE_VALUES:
        raise InvalidQuery("The 'active' filter must be 'true', 'false' or empty.")
    return _ACTIVE_VALUES[text]


@dataclass(frozen=True)
class UserQuery:
    """A parsed, validated users list request: search, filter, sort, cursor, page size."""

    q: str = ""
    active: bool | None = None
    sort: SortColumn = SORT_COLUMNS[DEFAULT_SORT]
    descending: bool = False
    after: Cursor | None = None
    before: Cursor | None = None
    limit: int = 50

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> UserQuery:
        """Parse query parameters; raises InvalidQuery (a ValueError) with a user-facing message."""
        sort, descending = parse_sort(params, SORT_COLUMNS, DEFAULT_SORT, DEFAULT_DIR)
        after, before = parse_cursors(params, sort)
        return cls(
            q=parse_search(params.get("q")),
            active=parse_active(params.get("active")),
            sort=sort,
            descending=descending,
            after=after,
            before=before,
            limit=parse_limit(params.get("limit")),
        )

    @property
    def is_filtered(self) -> bool:
        return bool(self.q) or self.active is not None

    @property
    def dir(self) -> str:
        return "desc" if self.descending else "asc"

    def filter_sql(self, first_param: int = 1) -> tuple[str, str, list[object]]:
        """(WHERE clause or "", ORDER BY clause, args) over plain `users` columns; no cursor."""
        conditions: list[str] = []
        args: list[object] = []
        if self.q:
            args.append(like_pattern(self.q))
            conditions.append(f"{SEARCH_EXPRESSION} ILIKE ${first_param + len(args) - 1}")
        if self.active is not None:
            args.append(self.active)
            conditions.append(f"is_active = ${first_param + len(args) - 1}")
        where = "WHERE " + " AND ".join(conditions) if conditions else ""
        return where, order_by(self.sort, self.descending), args

    def params(self, **changes: str | None) -> dict[str, str]:
        """The query string of this view (without cursors), with `changes` applied."""
        current: dict[str, str | None] = {
            "q": self.q or None,
            "active": None if self.active is None else ("true" if self.active else "false"),
            "sort": None if self.sort.key == DEFAULT_SORT else self.sort.key,
            "dir": self.dir if (self.sort.key, self.dir) != (DEFAULT_SORT, DEFAULT_DIR) else None,
            "limit": None if self.limit == 50 else str(self.limit),
        }
        current.update(changes)
        return {k: v for k, v in current.items() if v}
