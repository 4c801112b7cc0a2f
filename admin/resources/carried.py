"""The list state that travels with a row and with the pages opened from a list: the columns
the list shows (`cols`) and the list's own address (`back`). A row drawn again on its own (the
row endpoint, an inline edit, its save, cancel or conflict) has the columns of the list it
sits in; a record page opened from a list links back to it, and a form opened from a list, or
from such a record page (`_from=record`), returns there, search, sort and page intact."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup, escape
from starlette.exceptions import HTTPException

from admin.resources import reads, rows
from admin.resources.cursors import InvalidQuery
from admin.resources.model import Column, Table
from admin.resources.query import parse_columns

MAX_BACK = 4000
FROM = "_from"  # "record": the form was opened from the record page, not the list


def safe_back(table: Table, raw: object) -> str | None:
    """`raw` when it is this resource's own list address (a relative path, maybe with a query
    string), else None: a `back` never leads to another site, scheme or page."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_BACK:
        return None
    if not raw.isprintable() or any(ch.isspace() or ch == "\\" for ch in raw):
        return None
    path, _, _ = raw.partition("?")
    return raw if path == table.url else None


@dataclass(frozen=True)
class Carried:
    table: Table
    columns: tuple[Column, ...] | None = None  # None: the table's own list columns
    back: str | None = None
    # the list's sort columns: read with the rows (page cursors hold their values) even
    # where they are not shown
    sort: tuple[Column, ...] = ()

    @classmethod
    def from_params(cls, table: Table, params: Mapping[str, Any]) -> Carried:
        """From a row's or a form's request; a bad `cols` is a 400, a bad `back` is ignored."""
        raw = params.get("cols")
        try:
            columns = parse_columns(table, {"cols": raw}) if isinstance(raw, str) else None
        except InvalidQuery as exc:
            raise HTTPException(400, str(exc)) from None
        return cls(table, columns, safe_back(table, params.get("back")))

    @cached_property
    def _shown(self) -> tuple[str, rows.Cells, rows.Layout | None]:
        table = self.table
        shown = table.list_columns if self.columns is None else self.columns
        unseen = [c for c in self.sort if c not in shown]
        if self.columns is None:
            cells, layout = table.list_cells, None
            if not unseen:
                return table.list_select, cells, layout
        else:
            cells, layout = rows.layout(table, self.columns)
        return reads.select_list(table, [*shown, *unseen], table.targets), cells, layout

    @property
    def select(self) -> str:
        return self._shown[0]

    @property
    def cells(self) -> rows.Cells:
        return self._shown[1]

    @property
    def layout(self) -> rows.Layout | None:
        return self._shown[2]

    @property
    def shown_columns(self) -> tuple[Column, ...]:
        return tuple(c for c, _ in self.cells)

    @property
    def editable(self) -> list[Column]:
        """The fields of the row's inline editor."""
        return [c for c, _ in self.cells if c.editable]

    @cached_property
    def row_query(self) -> Markup:
        """What a row's own URLs carry (HTML-escaped): its columns and its list."""
        params = {}
        if self.columns is not None:
            params["cols"] = ",".join(c.name for c in self.columns)
        if self.back:
            params["back"] = self.back
        return escape("?" + urlencode(params)) if params else Markup("")

    @cached_property
    def back_query(self) -> str:
        """What a link to a form opened from the list carries (URL-safe, no escaping needed)."""
        return with_back("", self.back)

    @cached_property
    def record_query(self) -> str:
        """What a link to a record page carries: the list's address, unless the list is the
        table's own first page (where "Back to list" goes anyway)."""
        return "" if self.back == self.table.url else self.back_query

    def context(self) -> dict[str, Any]:
        return {"carried": self, "list_cells": self.cells}


def with_back(url: str, back: str | None) -> str:
    """`url` (a form page, no query of its own) still carrying the list to return to."""
    return url + "?back=" + quote(back, safe="") if back else url


@dataclass(frozen=True)
class Return:
    """Where a form (edit, delete) goes back to: the list at `back`, directly or through the
    record page it was opened from (which still links to that list)."""

    back: str | None = None
    record: bool = False  # opened from the record page

    @classmethod
    def from_params(cls, table: Table, params: Mapping[str, Any]) -> Return:
        back = safe_back(table, params.get("back"))
        return cls(back, back is not None and params.get(FROM) == "record")

    @property
    def query(self) -> str:
        """What a link to another form of the same chain carries (URL-safe)."""
        return with_back("", self.back) + (f"&{FROM}=record" if self.record else "")

    @property
    def back_query(self) -> str:
        """What a page beside the record (its history) carries: the list only."""
        return with_back("", self.back)

    def record_page(self, record_url: str) -> str:
        return with_back(record_url, self.back)

    def done(self, record_url: str) -> str:
        """Where the form leaves to, saved or cancelled: the page it was opened from."""
        return self.record_page(record_url) if self.record else self.back or record_url
