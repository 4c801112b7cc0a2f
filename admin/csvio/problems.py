"""What is wrong with a rejected CSV file, reported within fixed bounds.

A file can break a rule in every cell, and a cell can hold 50 MB: at most MAX_ERRORS
problems are kept (with a flag saying there were more), each value cut to VALUE_SHOWN
characters, so a rejection costs the same small answer whatever the file.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_ERRORS = 1000
VALUE_SHOWN = 200


def shown(value: str | None, limit: int = VALUE_SHOWN) -> str | None:
    """`value` as reported: the first `limit` characters, and "…" when there was more."""
    if value is None or len(value) <= limit:
        return value
    return value[:limit] + "…"


@dataclass(frozen=True)
class Problem:
    """One reason the file was rejected; line/column/value when it concerns one cell."""

    message: str
    line: int | None = None
    column: str | None = None
    value: str | None = None


class ImportRejected(Exception):
    """The file was not imported; nothing was written."""

    def __init__(
        self,
        problems: list[Problem],
        *,
        more: bool = False,
        total: int | None = None,
        error_file: str | None = None,
    ) -> None:
        super().__init__(problems[0].message if problems else "rejected")
        self.error_file = error_file  # token of the downloadable CSV of every problem
        self.problems = problems[:MAX_ERRORS]
        self.total = max(total or 0, len(problems))
        self.more = more or self.total > len(self.problems)


class ProblemList:
    """Collects problems up to MAX_ERRORS and only counts that there were more."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.more = False
        self.total = 0

    def add(self, problem: Problem) -> None:
        self.total += 1
        if len(self.problems) < MAX_ERRORS:
            self.problems.append(problem)
        else:
            self.more = True

    def raise_if_any(self) -> None:
        if self.problems:
            raise ImportRejected(self.problems, more=self.more, total=self.total)
