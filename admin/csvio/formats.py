"""How a file is written: its encoding, delimiter and decimal mark, chosen or detected.

Spreadsheets save CSV in UTF-8 (with or without a byte order mark) or in the system's
code page (Windows-1252 in western Europe and the Americas), separated by commas or, where
the comma is the decimal mark, by semicolons (then numbers are written 12,50); tab-separated
files come from copying cells. Detection reads the header and the first part of the file.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from admin.csvio.options import DELIMITER_LABELS, ENCODING_LABELS, ImportOptions
from admin.csvio.problems import ImportRejected, Problem

SAMPLE_BYTES = 1 << 20
CODECS = {"UTF-8": "utf-8", "WIN1252": "cp1252", "LATIN1": "latin-1"}


@dataclass(frozen=True)
class FileFormat:
    encoding: str  # PostgreSQL's name: UTF-8, WIN1252, LATIN1
    delimiter: str
    decimal_comma: bool
    encoding_detected: bool = False
    delimiter_detected: bool = False

    @property
    def codec(self) -> str:
        return CODECS[self.encoding]

    @property
    def encoding_label(self) -> str:
        return ENCODING_LABELS[self.encoding]

    @property
    def delimiter_label(self) -> str:
        return DELIMITER_LABELS[self.delimiter]

    def describe(self) -> dict[str, object]:
        return {
            "encoding": self.encoding_label,
            "encoding_detected": self.encoding_detected,
            "delimiter": self.delimiter_label,
            "delimiter_detected": self.delimiter_detected,
            "decimal_comma": self.decimal_comma,
        }

    @property
    def sentence(self) -> str:
        """ "Read as UTF-8 (detected), semicolon-separated (detected), decimal commas"."""
        encoding = self.encoding_label + (" (detected)" if self.encoding_detected else "")
        delimiter = self.delimiter_label + (" (detected)" if self.delimiter_detected else "")
        text = f"Read as {encoding}, {delimiter}-separated"
        return text + (", decimal commas" if self.decimal_comma else "")

    def names(self, raw: bytes) -> list[str]:
        """The header record's names, trimmed (the mapping matches them loosely)."""
        text = raw.decode(self.codec, "replace")
        try:
            row = next(csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter), [])
        except csv.Error as exc:
            message = f"the header row is not valid CSV: {exc}"
            raise ImportRejected([Problem(message, line=1)]) from None
        return [name.strip() for name in row]


def _outside_quotes(raw: bytes) -> bytes:
    parts = raw.split(b'"')
    return b"".join(parts[0::2])


def detect_delimiter(header: bytes) -> str:
    """The most frequent of tab, semicolon and comma outside quotes (comma on a tie)."""
    plain = _outside_quotes(header)
    counts = {d: plain.count(d.encode()) for d in ("\t", ";", ",")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


# a character UTF-8 writes in two to four bytes: Windows-1252 text almost never holds one
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


def _is_utf8(sample: bytes) -> bool:
    """UTF-8 unless the sample has bytes UTF-8 cannot hold and no UTF-8 character at all
    (then it is a code page); a broken UTF-8 file stays UTF-8, and its bad lines are named."""
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data":
            return True  # a character cut at the end of the sample
        return _UTF8_SEQUENCE.search(sample) is not None
    return True


def resolve(options: ImportOptions, header: bytes, sample: bytes, *, bom: bool) -> FileFormat:
    """The format to read the file with: as chosen, else detected."""
    encoding = options.encoding
    encoding_detected = False
    if not encoding:
        encoding_detected = True
        encoding = "UTF-8" if bom or _is_utf8(sample) else "WIN1252"
    delimiter = options.delimiter
    delimiter_detected = False
    if not delimiter:
        delimiter_detected = True
        delimiter = detect_delimiter(header)
    decimal_comma = options.decimal_comma
    if decimal_comma is None:
        decimal_comma = delimiter == ";"
    return FileFormat(encoding, delimiter, decimal_comma, encoding_detected, delimiter_detected)
