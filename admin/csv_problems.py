"""What is wrong with a rejected CSV file, reported within fixed bounds.

A file can break a rule in every cell, and a cell can hold 50 MB: at most MAX_ERRORS
problems are kept (with a flag saying there were more), each value cut to VALUE_SHOWN
characters, so a rejection costs the same small answer whatever the file.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_ERRORS = 50
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

    def __init__(self, problems: list[Problem], *, more: bool = False) -> None:
        super().__init__(problems[0].message if problems else "rejected")
        self.problems = problems[:MAX_ERRORS]
        self.more = more or len(problems) > MAX_ERRORS


class ProblemList:
    """Collects problems up to MAX_ERRORS and only counts that there were more."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.more = False

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_ERRORS:
            self.problems.append(problem)
        else:
            self.more = True

    def raise_if_any(self) -> None:
        if self.problems:
            raise ImportRejected(self.problems, more=self.more)
