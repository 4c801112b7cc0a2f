"""How an export is written: plain RFC 4180 as PostgreSQL writes it, or for Excel (a byte
order mark so it reads UTF-8, CRLF row ends, and in locales whose decimal mark is a comma,
semicolons between fields and decimal commas), with all columns or the list's own."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from admin.csvio.tables import CsvTable
from admin.resources.model import Table

UTF8_BOM = b"\xef\xbb\xbf"
# languages whose spreadsheets use a decimal comma, hence ';' between CSV fields
COMMA_DECIMAL_LANGUAGES = frozenset(
    "bg cs da de el es et fi fr hr hu id it lt lv nb nl nn no pl pt ro ru sk sl sr sv tr uk"
    .split()
)  # fmt: skip


@dataclass(frozen=True)
class ExportDialect:
    excel: bool = False
    delimiter: str = ","
    names: tuple[str, ...] | None = None  # None: every column

    @property
    def decimal_comma(self) -> bool:
        return self.excel and self.delimiter == ";"


def _first_language(request: Request) -> str:
    header = request.headers.get("accept-language", "")
    first = header.split(",", 1)[0].split(";", 1)[0].strip().lower()
    return first.split("-", 1)[0]


def dialect_of(request: Request, table: Table, spec: CsvTable) -> ExportDialect:
    """`excel=1` (delimiter from `delimiter=,|;` or the browser's language), and
    `columns=list` for the columns the list shows."""
    params = request.query_params
    excel = params.get("excel", "") in {"1", "true", "yes"}
    chosen = params.get("delimiter", "")
    if chosen in {",", ";"}:
        delimiter = chosen
    elif excel and _first_language(request) in COMMA_DECIMAL_LANGUAGES:
        delimiter = ";"
    else:
        delimiter = ","
    names: tuple[str, ...] | None = None
    if params.get("columns") == "list":
        exported = set(spec.export_names)
        names = tuple(c.name for c in table.list_columns if c.name in exported) or None
    return ExportDialect(excel=excel, delimiter=delimiter, names=names)


class CrlfRows:
    """Turns the LF that ends each CSV row into CRLF, leaving line breaks inside quoted
    fields as they are (quotes are counted across chunks)."""

    def __init__(self) -> None:
        self._in_quotes = False

    def __call__(self, chunk: bytes) -> bytes:
        parts = chunk.split(b'"')
        start = 1 if self._in_quotes else 0
        for index in range(start, len(parts), 2):
            parts[index] = parts[index].replace(b"\n", b"\r\n")
        self._in_quotes ^= (len(parts) - 1) % 2 == 1
        return b'"'.join(parts)
