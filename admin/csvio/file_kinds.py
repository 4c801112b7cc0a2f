"""Files that are not CSV text, told by their first bytes: a workbook, an archive, an image or
UTF-16 text is refused with what it is and what to upload instead, not with a list of
column names made of its bytes."""

from __future__ import annotations

import re

# the longest signature below, and then some
SIGNATURE_BYTES = 16

_SAVE_AS_CSV = "in the spreadsheet, save the sheet as “CSV UTF-8” and upload that file"
_UNPACK = "unpack it and upload the CSV file inside"
_CSV_ONLY = "upload a CSV file (text, one record per line)"

# (first bytes, what the file is, what to do); longer signatures before their prefixes
SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (
        b"PK\x03\x04",
        "a ZIP archive (an .xlsx or .ods workbook is one)",
        f"{_SAVE_AS_CSV}; or, for an archive of CSV files, {_UNPACK}",
    ),
    (b"PK\x05\x06", "an empty ZIP archive", _CSV_ONLY),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)", _SAVE_AS_CSV),
    (b"%PDF-", "a PDF document", _CSV_ONLY),
    (b"\x1f\x8b", "gzip-compressed", _UNPACK),
    *((b"BZh%d1AY&SY" % level, "bzip2-compressed", _UNPACK) for level in range(1, 10)),
    (b"\xfd7zXZ\x00", "xz-compressed", _UNPACK),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", _UNPACK),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", _UNPACK),
    (b"Rar!\x1a\x07", "a RAR archive", _UNPACK),
    (b"SQLite format 3\x00", "an SQLite database", _CSV_ONLY),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", _CSV_ONLY),
    (b"\xff\xd8\xff", "a JPEG image", _CSV_ONLY),
    (b"GIF87a", "a GIF image", _CSV_ONLY),
    (b"GIF89a", "a GIF image", _CSV_ONLY),
    (b"<?xml", "an XML document (Excel's “XML Spreadsheet” is one)", _SAVE_AS_CSV),
    (b"<!doctype html", "a web page (HTML)", _CSV_ONLY),
    (b"<html", "a web page (HTML)", _CSV_ONLY),
    (b"{\\rtf", "an RTF document", _CSV_ONLY),
    (b"\xff\xfe\x00\x00", "UTF-32 text", _SAVE_AS_CSV),
    (b"\x00\x00\xfe\xff", "UTF-32 text", _SAVE_AS_CSV),
    (b"\xff\xfe", "UTF-16 text (as Excel's “Unicode Text” saves)", _SAVE_AS_CSV),
    (b"\xfe\xff", "UTF-16 text", _SAVE_AS_CSV),
)

# bytes no CSV header holds: C0 controls other than tab and the line ends, and DEL
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _refusal(what: str, advice: str) -> str:
    return f"the file is {what}, not CSV text: {advice}"


def refusal(start: bytes) -> str | None:
    """Why a file starting with these bytes (at least SIGNATURE_BYTES of them, or the whole
    file) cannot be imported; None when it may be CSV."""
    folded = start.lower()  # markup (its signatures are in lower case) in any case
    for signature, what, advice in SIGNATURES:
        if start.startswith(signature) or folded.startswith(signature):
            return _refusal(what, advice)
    return None


def header_refusal(header: bytes) -> str | None:
    """Why a first line holding these bytes is no CSV header; None when it may be one."""
    found = _CONTROL.search(header)
    if found is None:
        return None
    # UTF-16 without a byte order mark: every other byte of its Latin letters is NUL
    if header.count(0) * 3 >= len(header.rstrip(b"\r\n")):
        return _refusal("UTF-16 text", _SAVE_AS_CSV)
    where = f"the control byte 0x{found.group()[0]:02X} at byte {found.start() + 1}"
    return _refusal(f"not text (its first line holds {where})", _CSV_ONLY)
