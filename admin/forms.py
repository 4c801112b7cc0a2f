"""Reading form bodies strictly, and checking the text fields they carry.

Starlette decodes urlencoded bytes as latin-1 and percent-escapes with errors="replace",
so a body that is not UTF-8 would silently become mojibake or U+FFFD. Browsers send
urlencoded forms as ASCII with UTF-8 percent-escapes; anything else is refused with 400.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import parse_qsl

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MAX_FIELDS = 1000
BAD_ENCODING = "The form was not sent as UTF-8; nothing was saved."


def media_type(request: Request) -> str:
    content_type = request.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower()


def is_urlencoded(request: Request) -> bool:
    return media_type(request) == URLENCODED


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


def check_encoding(request: Request, body: bytes) -> None:
    """Raise 400 when an urlencoded form body is not UTF-8."""
    if is_urlencoded(request) and not urlencoded_is_utf8(body):
        raise HTTPException(400, BAD_ENCODING)


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in value)


def text_field(form: FormData, name: str) -> str:
    """A form field as text ('' when absent or an uploaded file)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""
