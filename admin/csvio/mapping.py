"""Which table column each field of a file's header fills.

Headers match column names and labels without regard to case, spaces or punctuation
(`E-mail`, `Full Name` and `full_name` all map). A reference column may also be given by a
unique name of the referenced record: `user` (its label) or `user_email` for `user_id`,
`product_sku` or plain `sku` for `product_id`. A mapping chosen on the page (or sent as
`map_<n>=<column>` fields) wins over the guess; `ignore_unknown` drops unmatched fields.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping as MappingType
from dataclasses import dataclass

from admin.csvio.options import Mode
from admin.csvio.problems import Problem, ProblemList, shown
from admin.csvio.tables import VERSION, CsvColumn, CsvTable

_NAME_SHOWN = 60
# a PostgreSQL table holds at most 1,600 columns; the staging table adds one for the order
MAX_FIELDS = 1599
IGNORE = "-"  # a mapping choice: leave this field out
_ERROR_FILE_COLUMNS = frozenset({"importline", "importproblem"})


def normalised(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).casefold()
    return re.sub(r"[^0-9a-z]+", "", folded)


@dataclass(frozen=True)
class Target:
    """What one header field fills: a column (by value, or by a referenced record's name),
    or the rows' `version` (compared, never written)."""

    column: CsvColumn | None
    by: str | None = None  # the referenced table's column that names the record
    version: bool = False

    @property
    def key(self) -> str:
        if self.version:
            return VERSION
        assert self.column is not None
        return f"{self.column.name}:{self.by}" if self.by else self.column.name

    @property
    def name(self) -> str:
        return VERSION if self.version else (self.column.name if self.column else "")

    @property
    def described(self) -> str:
        if self.version:
            return "version (must match the row's)"
        assert self.column is not None
        if self.by:
            return f"{self.column.name} by {self.by}"
        return self.column.name


@dataclass(frozen=True)
class Field:
    position: int  # 1-based
    header: str
    stage: str  # the staging table's column: c1, c2...
    target: Target | None  # None: ignored
    decimal_comma: bool = False  # numbers written 12,50


@dataclass(frozen=True)
class ColumnMapping:
    fields: tuple[Field, ...]

    @property
    def mapped(self) -> list[Field]:
        return [f for f in self.fields if f.target is not None]

    @property
    def columns(self) -> list[tuple[Field, CsvColumn]]:
        return [
            (f, f.target.column)
            for f in self.fields
            if f.target is not None and f.target.column is not None
        ]

    def field_of(self, name: str) -> Field | None:
        return next((f for f in self.mapped if f.target and f.target.name == name), None)

    def has(self, name: str) -> bool:
        return self.field_of(name) is not None

    @property
    def version(self) -> Field | None:
        return next((f for f in self.mapped if f.target and f.target.version), None)


def targets(spec: CsvTable) -> dict[str, Target]:
    """Every target a field can have, by its choice key (column, column:by, version)."""
    found: dict[str, Target] = {}
    for column in spec.columns:
        found[column.name] = Target(column)
        if column.reference is not None:
            for by in column.reference.names:
                target = Target(column, by)
                found[target.key] = target
    if spec.versioned:
        found[VERSION] = Target(None, version=True)
    return found


def _candidates(spec: CsvTable) -> dict[str, Target]:
    """Normalised header text -> target; later entries win (names over labels over guesses)."""
    found: dict[str, Target] = {}
    for column in spec.columns:
        reference = column.reference
        if reference is None or not reference.names:
            continue
        base = re.sub(r"_id$", "", column.name)
        for by in reversed(reference.names):
            found[normalised(by)] = Target(column, by)
            found[normalised(base + "_" + by)] = Target(column, by)
            found[normalised(column.label + " " + by)] = Target(column, by)
        # the column's label ("User" for user_id) names the record
        found[normalised(column.label)] = Target(column, reference.names[0])
        found[normalised(base)] = Target(column, reference.names[0])
    for column in spec.columns:
        if column.reference is None or not column.reference.names:
            found[normalised(column.label)] = Target(column)
    for column in spec.columns:
        found[normalised(column.name)] = Target(column)
    if spec.versioned:
        found[normalised(VERSION)] = Target(None, version=True)
    return found


def map_header(
    spec: CsvTable,
    names: list[str],
    mode: Mode,
    *,
    ignore_unknown: bool = False,
    chosen: MappingType[int, str] | None = None,
    decimal_comma: bool = False,
) -> ColumnMapping:
    """The mapping of the header `names`; ImportRejected listing every header problem."""
    mapping, problems = guess_mapping(
        spec,
        names,
        mode,
        ignore_unknown=ignore_unknown,
        chosen=chosen,
        decimal_comma=decimal_comma,
    )
    problems.raise_if_any()
    return mapping


def guess_mapping(
    spec: CsvTable,
    names: list[str],
    mode: Mode,
    *,
    ignore_unknown: bool = False,
    chosen: MappingType[int, str] | None = None,
    decimal_comma: bool = False,
) -> tuple[ColumnMapping, ProblemList]:
    """The mapping of the header `names` (what could be matched) and its problems."""
    problems = ProblemList()
    candidates = _candidates(spec)
    by_key = targets(spec)
    chosen = chosen or {}
    fields: list[Field] = []
    filled: dict[str, Field] = {}
    unknown = 0
    for position, name in enumerate(names, start=1):
        label = shown(name, _NAME_SHOWN) or ""
        target: Target | None
        if position in chosen:
            choice = chosen[position]
            if choice == IGNORE:
                target = None
            elif choice in by_key:
                target = by_key[choice]
            else:
                problems.add(Problem(f"there is no column {shown(choice, 60)!r}", line=1))
                target = None
        elif normalised(name) in _ERROR_FILE_COLUMNS and normalised(name) not in candidates:
            target = None  # the columns an error file adds: fixed files come back with them
        elif not name.strip():
            target = None
            if not ignore_unknown:
                problems.add(Problem(f"header column {position} has no name", line=1))
        else:
            target = candidates.get(normalised(name))
            if target is None and not ignore_unknown:
                unknown += 1
                problems.add(Problem(f"unknown column {label!r}", line=1, column=label))
        if target is not None:
            earlier = filled.get(target.name)
            if earlier is not None:
                message = (
                    f"column {label!r} appears twice"
                    if normalised(earlier.header) == normalised(name)
                    else f"columns {shown(earlier.header, _NAME_SHOWN)!r} and {label!r} "
                    f"both fill {target.name}"
                )
                problems.add(Problem(message, line=1, column=label))
            filled[target.name] = Field(position, name, f"c{position}", target)
        fields.append(Field(position, name, f"c{position}", target, decimal_comma))
    if unknown:
        problems.add(
            Problem(
                f"{spec.title} accept the columns {', '.join(spec.accepted)} (or their labels); "
                "choose “Ignore unknown columns” (ignore_unknown=1) to leave the others out",
                line=1,
            )
        )
    required = list(spec.required)
    if mode is Mode.UPSERT:
        if not spec.key:
            problems.add(Problem(f"{spec.title} have no key to match rows on: use insert", line=1))
        required += [k for k in spec.key if k not in required]
    for name in required:
        if name not in filled:
            problems.add(Problem(f"missing required column {name!r}", line=1, column=name))
    if len(names) > MAX_FIELDS:
        problems.add(
            Problem(
                f"the header has {len(names):,} columns; a file may have at most {MAX_FIELDS:,}",
                line=1,
            )
        )
    return ColumnMapping(tuple(fields)), problems
