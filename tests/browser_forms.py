"""Forms and links of a page, read the way a browser reads them: what a form submits when
its button is pressed untouched, and the links a page offers. Used by the tests of tables
the panel has never seen (tests/test_foreign_schema.py, test_resource_types.py...)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser

import asyncpg

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NO_VALUE = frozenset({"submit", "button", "reset", "image", "file"})


def _date_value(value: str) -> str:
    """<input type=date> sanitizes its value: anything but a valid yyyy-mm-dd is dropped."""
    if not _DATE.fullmatch(value):
        return ""
    try:
        date.fromisoformat(value)
    except ValueError:
        return ""
    return value


@dataclass
class _Select:
    name: str
    options: list[tuple[str, bool]] = field(default_factory=list)
    text: str | None = None  # the option being read (its value comes from its text)
    value: str | None = None
    selected: bool = False

    def submitted(self) -> str | None:
        chosen = [v for v, s in self.options if s]
        if chosen:
            return chosen[-1]  # a single select keeps the last option marked selected
        return self.options[0][0] if self.options else None


class _FormReader(HTMLParser):
    def __init__(self, form_id: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = form_id is None  # None: every field of the page (an htmx include)
        self.fields: list[tuple[str, str]] = []
        self.select: _Select | None = None
        self.textarea: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = self.form_id is None or a.get("id") == self.form_id
            return
        if not self.inside or "disabled" in a:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            value = a.get("value", "")
            if kind in _NO_VALUE:
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((a["name"], value or "on"))
                return
            if kind == "date":
                value = _date_value(value)
            elif kind != "hidden":
                value = value.replace("\r", "").replace("\n", "")
            self.fields.append((a["name"], value))
        elif tag == "select" and a.get("name"):
            self.select = _Select(a["name"])
        elif tag == "option" and self.select is not None:
            self.select.value = a.get("value")
            self.select.selected = "selected" in a
            self.select.text = ""
        elif tag == "textarea" and a.get("name"):
            self.textarea = (a["name"], [])

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.textarea[1].append(data)
        elif self.select is not None and self.select.text is not None:
            self.select.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = self.form_id is None
        elif tag == "option" and self.select is not None and self.select.text is not None:
            value = self.select.value
            text = " ".join(self.select.text.split())
            self.select.options.append((text if value is None else value, self.select.selected))
            self.select.text = None
        elif tag == "select" and self.select is not None:
            chosen = self.select.submitted()
            if chosen is not None:
                self.fields.append((self.select.name, chosen))
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            name, parts = self.textarea
            text = "".join(parts)
            # the HTML parser drops one newline right after <textarea>; a submitted
            # textarea's line breaks are CR LF
            if text.startswith("\r\n"):
                text = text[2:]
            elif text.startswith("\n"):
                text = text[1:]
            text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
            self.fields.append((name, text))
            self.textarea = None


def form_fields(html: str, form_id: str | None = "record-form") -> list[tuple[str, str]]:
    """What the form submits as it was rendered (its button pressed, nothing typed)."""
    reader = _FormReader(form_id)
    reader.feed(html)
    reader.close()
    return reader.fields


def as_posted(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    """form_fields() in the shape httpx posts, every value of a name kept in order."""
    posted: dict[str, list[str]] = {}
    for name, value in fields:
        posted.setdefault(name, []).append(value)
    return posted


def form_dict(html: str, form_id: str | None = "record-form") -> dict[str, str]:
    """form_fields() as a dict: the last value of a name wins (a checkbox after its hidden
    "false"), as the server reads it."""
    return dict(form_fields(html, form_id))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def links(html: str) -> list[str]:
    reader = _Links()
    reader.feed(html)
    return reader.hrefs


def field_error(html: str, name: str) -> str:
    """The text of a form field's error slot ("" when there is none)."""
    match = re.search(
        rf'<p id="{re.escape(name)}-error" class="field-error"[^>]*>(.*?)</p>', html, re.S
    )
    assert match, f"no error slot for {name!r}"
    return match.group(1).strip()


async def audit_entries(
    conn: asyncpg.Connection, resource: str, action: str | None = None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM audit_log WHERE resource = $1 AND ($2::text IS NULL OR action = $2)"
        " ORDER BY id",
        resource,
        action,
    )


async def table_digest(conn: asyncpg.Connection, qualified: str) -> str:
    """md5 of every row of a table (order-independent): proves nothing was written."""
    digest: str = await conn.fetchval(
        f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {qualified} t"
    )
    return digest
