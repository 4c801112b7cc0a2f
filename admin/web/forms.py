"""Reading form bodies strictly, and checking the text fields they carry.

Starlette decodes urlencoded bytes as latin-1 and percent-escapes with errors="replace",
and multipart text fields with errors="replace" too, so a body that is not UTF-8 would
silently become mojibake or U+FFFD. Browsers send forms as UTF-8 (urlencoded: ASCII with
UTF-8 percent-escapes); anything else is refused with 400, whatever the form's encoding.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import parse_qsl

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MAX_FIELDS = 1000
BAD_ENCODING = "The form was not sent as UTF-8; nothing was saved."
BAD_MULTIPART = "The form could not be read (malformed multipart body); nothing was saved."


def media_type(request: Request) -> str:
    content_type = request.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower()


def urlencoded_is_utf8(body: bytes) -> bool:
    """True when `body` is ASCII and every percent-escape decodes to valid UTF-8."""
    try:
        text = body.decode("ascii")
        parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        return False
    return True


class _MultipartText:
    """Collects each part's headers and, for parts that are not files, its bytes."""

    def __init__(self) -> None:
        self.utf8 = True
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._data = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
        }

    def _on_part_begin(self) -> None:
        self._disposition = b""
        self._data = bytearray()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]

    def _on_part_end(self) -> None:
        # field names and file names come from this header; a file's content is its own
        _, options = parse_options_header(self._disposition)
        texts = [self._disposition] if b"filename" in options else [self._disposition, self._data]
        self.utf8 = self.utf8 and all(_is_utf8(bytes(text)) for text in texts)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def multipart_is_utf8(content_type: str, body: bytes) -> bool:
    """True when every text field (and every field and file name) of `body` is UTF-8.

    A declared charset other than UTF-8 counts as not UTF-8: Starlette would decode with it.
    Raises HTTPException(400) for a body that is not multipart at all.
    """
    _, params = parse_options_header(content_type)
    charset = params.get(b"charset", b"utf-8").decode("latin-1").lower()
    boundary = params.get(b"boundary")
    if not boundary:
        raise HTTPException(400, BAD_MULTIPART)
    text = _MultipartText()
    parser = MultipartParser(boundary, text.callbacks())  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except FormParserError:
        raise HTTPException(400, BAD_MULTIPART) from None
    return text.utf8 and charset in {"utf-8", "utf8"}


def check_encoding(request: Request, body: bytes) -> None:
    """Raise 400 when a form body (urlencoded or multipart) is not UTF-8."""
    kind = media_type(request)
    if kind == URLENCODED and not urlencoded_is_utf8(body):
        raise HTTPException(400, BAD_ENCODING)
    if kind == MULTIPART and not multipart_is_utf8(request.headers["content-type"], body):
        raise HTTPException(400, BAD_ENCODING)


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in value)


def text_field(form: FormData, name: str) -> str:
    """A form field as text ('' when absent or an uploaded file)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""
