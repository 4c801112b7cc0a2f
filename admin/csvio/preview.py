"""What an import would read, before the file is sent: the page posts the first part of
the chosen file here and shows how it is read (encoding, delimiter), what each header field
fills (editable), the first rows as parsed and how many rows the file holds."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin.csvio import file_kinds
from admin.csvio.formats import FileFormat, resolve
from admin.csvio.mapping import IGNORE, ColumnMapping, guess_mapping, targets
from admin.csvio.options import DELIMITER_LABELS, ENCODINGS, ImportOptions, chosen_mapping
from admin.csvio.problems import Problem
from admin.csvio.tables import CsvTable, csv_table
from admin.csvio.upload import BLANK_FIRST_LINE, UTF8_BOM
from admin.resources.model import Table
from admin.web.htmx import render

PREVIEW_ROWS = 20
# the page sends at most this much of the file
SAMPLE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Preview:
    format: FileFormat
    mapping: ColumnMapping
    problems: list[Problem]
    rows: list[list[str]]
    rows_counted: int
    whole_file: bool
    estimated_rows: int
    # why the file cannot be read as CSV at all (csvio.file_kinds); nothing else is shown
    refused: str | None = None


def _records(text: str, delimiter: str) -> tuple[list[str], list[list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, [])
        rows = list(reader)
    except csv.Error:
        return [], []
    return header, rows


def preview(spec: CsvTable, sample: bytes, total_bytes: int, options: ImportOptions,
            chosen: dict[int, str]) -> Preview:  # fmt: skip
    bom = sample.startswith(UTF8_BOM)
    body = sample[len(UTF8_BOM) :] if bom else sample
    whole = total_bytes <= len(sample)
    first_line = body.split(b"\n", 1)[0].split(b"\r", 1)[0]
    file_format = resolve(options, first_line, body, bom=bom)
    refused = file_kinds.refusal(body[: file_kinds.SIGNATURE_BYTES]) or (
        file_kinds.header_refusal(first_line)
    )
    if not first_line.strip() and body.strip():
        refused = BLANK_FIRST_LINE
    if refused:
        return Preview(file_format, ColumnMapping(()), [], [], 0, whole, 0, refused=refused)
    text = body.decode(file_format.codec, "replace")
    if not whole:
        # the last record may be cut short
        text = text[: max(text.rfind("\n"), text.rfind("\r"))]
    header, rows = _records(text, file_format.delimiter)
    if len(header) > 1:
        rows = [row for row in rows if row]  # blank lines are skipped (csvio.scan)
    names = [name.strip() for name in header]
    mapping, problems = guess_mapping(
        spec,
        names,
        options.mode,
        ignore_unknown=options.ignore_unknown,
        chosen=chosen,
        decimal_comma=file_format.decimal_comma,
    )
    estimated = len(rows)
    if not whole and rows:
        per_row = len(text.encode(file_format.codec, "replace")) / (len(rows) + 1)
        estimated = int(total_bytes / per_row) - 1
    return Preview(
        format=file_format,
        mapping=mapping,
        problems=problems.problems,
        rows=rows[:PREVIEW_ROWS],
        rows_counted=len(rows),
        whole_file=whole,
        estimated_rows=max(estimated, 0),
    )


async def preview_page(request: Request, table: Table) -> Response:
    """POST the start of a file (raw body, at most SAMPLE_BYTES): the preview fragment."""
    sample = await request.body()
    if len(sample) > SAMPLE_BYTES:
        raise HTTPException(413, f"Send at most the first {SAMPLE_BYTES // 1024} KB of the file.")
    params = request.query_params
    try:
        options = ImportOptions.parse(params.get)
        total = int(params.get("size") or len(sample))
    except ValueError as exc:
        raise HTTPException(400, str(exc) or "size must be a whole number.") from None
    spec = csv_table(table)
    found = preview(
        spec, sample, max(total, len(sample)), options, chosen_mapping(params.get, 1599)
    )
    context: dict[str, Any] = {
        "spec": spec,
        "preview": found,
        "choices": targets(spec),
        "ignore": IGNORE,
        "encodings": ENCODINGS,
        "delimiters": {"comma": ",", "semicolon": ";", "tab": "tab"},
        "delimiter_labels": DELIMITER_LABELS,
        "options": options,
    }
    return render(request, "csv/_preview.html", "csv/_preview.html", context)
