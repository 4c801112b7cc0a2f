"""The second look at a file COPY refused: every structural problem in one pass.

COPY stops at the first malformed record. When it does, the spooled file is read again
here (in a worker thread, record by record, so memory stays at one record): each
well-formed record goes to a clean file with its physical line number in front, for COPY
to stage and the value checks to run on; each malformed one (wrong field count, a quote
never closed or misplaced, invalid text in the file's encoding, NUL bytes) goes to a file of
broken records. Both files are anonymous temporary files the caller closes.

A blank line in a file of several columns is skipped and counted, as spreadsheets and most
CSV readers do (COPY refuses it as a record with too few fields); in a one-column file it is
an empty value, as COPY reads it.
"""

from __future__ import annotations

import csv
import io
import sys
import tempfile
from dataclasses import dataclass, field
from typing import BinaryIO

from admin.csvio.problems import MAX_ERRORS, Problem, shown

# a 50 MB field is a field like any other here; COPY reads it too
csv.field_size_limit(sys.maxsize)
REPLACEMENT = "\ufffd"


@dataclass
class Scan:
    clean: BinaryIO  # line, c1..cN per well-formed record; no header
    broken: BinaryIO  # line, problem, c1..cN per malformed record; no header
    broken_count: int = 0
    blank_lines: int = 0  # skipped
    first: list[Problem] = field(default_factory=list)

    def close(self) -> None:
        self.clean.close()
        self.broken.close()


def _printable(text: str) -> str:
    """Text that any UTF-8 consumer accepts: undecodable bytes and NUL as U+FFFD."""
    cleaned = text.replace("\x00", REPLACEMENT)
    return cleaned.encode("utf-8", "replace").decode("utf-8") if _has_bad(cleaned) else cleaned


def _has_bad(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _problem_of(row: list[str], fields: int, encoding: str) -> str | None:
    for position, value in enumerate(row, start=1):
        if "\x00" in value:
            return f"field {position} holds a NUL byte (character 0), which text cannot store"
        if _has_bad(value):
            return (
                f"field {position} is not valid {encoding}: choose the file's encoding "
                "(Windows-1252 for most spreadsheets saved as plain CSV)"
            )
    if len(row) > fields:
        return f"has more fields than the header ({len(row)}, not {fields})"
    if len(row) < fields:
        return f"has fewer fields than the header ({len(row)}, not {fields})"
    return None


def scan(
    file: BinaryIO, skip: int, fields: int, *, encoding: str, delimiter: str, header_lines: int
) -> Scan:
    """Read `file` from byte `skip` (past the header, `header_lines` long) as `fields`-field
    CSV records."""
    result = Scan(
        clean=tempfile.TemporaryFile(prefix="csv-clean-"),
        broken=tempfile.TemporaryFile(prefix="csv-broken-"),
    )
    try:
        _scan(file, skip, fields, encoding, delimiter, header_lines, result)
    except BaseException:
        result.close()
        raise
    return result


def _scan(
    file: BinaryIO,
    skip: int,
    fields: int,
    encoding: str,
    delimiter: str,
    header_lines: int,
    result: Scan,
) -> None:
    file.seek(skip)
    codec = "utf-8" if encoding == "UTF-8" else "cp1252" if encoding == "WIN1252" else "latin-1"
    text = io.TextIOWrapper(file, encoding=codec, errors="surrogateescape", newline="")
    clean = io.TextIOWrapper(result.clean, encoding="utf-8", newline="", write_through=False)
    broken = io.TextIOWrapper(result.broken, encoding="utf-8", newline="", write_through=False)
    good, bad = csv.writer(clean), csv.writer(broken)
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    # the header's lines come before the first record
    done_lines = header_lines
    label = {"UTF-8": "UTF-8", "WIN1252": "Windows-1252"}.get(encoding, "Latin-1")
    try:
        while True:
            start = done_lines + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                end = header_lines + reader.line_num
                if "unexpected end of data" in str(exc):
                    message = (
                        "a quote opened on this line is never closed: the file ends "
                        f"inside the quoted field (on line {end})"
                    )
                    line, row = start, []
                else:
                    message = f"is not valid CSV ({exc}): quote the field, doubling its quotes"
                    line, row = start, []
                _broken(result, bad, line, message, row, fields)
                done_lines = end
                continue
            done_lines = header_lines + reader.line_num
            if not row and fields > 1:
                result.blank_lines += 1
                continue
            row = row or [""]  # a blank line: one empty field, as COPY reads it
            problem = _problem_of(row, fields, label)
            if problem is None:
                good.writerow([start, *row])
            else:
                _broken(result, bad, start, problem, row, fields)
    finally:
        clean.flush()
        broken.flush()
        clean.detach()
        broken.detach()
        text.detach()
    result.clean.seek(0)
    result.broken.seek(0)


def _broken(
    result: Scan, writer: csv._writer, line: int, message: str, row: list[str], fields: int
) -> None:
    values = [_printable(v) for v in row]
    if len(values) > fields:
        values = [*values[: fields - 1], ",".join(values[fields - 1 :])] if fields else []
    values += [""] * (fields - len(values))
    writer.writerow([line, message, *values])
    result.broken_count += 1
    if len(result.first) < MAX_ERRORS:
        shown_value = shown(",".join(v for v in values if v)) if values else None
        result.first.append(Problem(message, line=line, value=shown_value or None))
