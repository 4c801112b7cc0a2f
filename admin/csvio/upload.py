"""An uploaded CSV file as a stream of bytes: multipart or raw body, within limits, hashed.

Nothing is buffered beyond one network chunk: the multipart parser is fed chunk by chunk
and hands the file part's bytes on as they arrive, so the caller can spool them to disk.
The body is read within the size, time and rate limits of admin.web.bodies.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from admin.csvio import file_kinds
from admin.web.bodies import (
    BodyCutShort,
    BodyLimits,
    BodyRefused,
    BodyTooSlow,
    check_declared_length,
    limited_stream,
)

FILE_FIELD = "file"
MAX_FIELD_BYTES = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024
UTF8_BOM = b"\xef\xbb\xbf"
RAW_CSV_TYPES = (b"text/csv", b"application/csv", b"text/plain", b"application/octet-stream")


class UploadRefused(Exception):
    """The request body cannot be imported; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _Body:
    """The raw request body, chunk by chunk, within `limits` (size, time and rate)."""

    def __init__(self, request: Request, limits: BodyLimits) -> None:
        self._chunks = limited_stream(request, limits)

    async def next(self) -> bytes | None:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None
        except BodyCutShort:
            raise ClientDisconnect() from None  # the client left: an aborted import
        except BodyRefused as exc:
            raise UploadRefused(_upload_message(exc), exc.status) from None


def _upload_message(exc: BodyRefused) -> str:
    if isinstance(exc, BodyTooSlow):
        return str(exc).replace("request body", "upload", 1)
    return str(exc).replace("The request body", "The upload", 1)


@dataclass
class _PartState:
    headers: dict[str, str] = field(default_factory=dict)
    header_name: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)


class _MultipartFile:
    """Feeds a streaming multipart parser; collects small fields, passes the file part on."""

    def __init__(self, body: _Body, boundary: bytes) -> None:
        self._body = body
        self.fields: dict[str, str] = {}
        self.fields_before_file: dict[str, str] = {}
        self.filename: str | None = None
        self._part = _PartState()
        self._in_file = False
        self._file_seen = False
        self._file_done = False
        self._pending: list[bytes] = []
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )

    def _on_part_begin(self) -> None:
        self._part = _PartState()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._part.header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._part.header_value += data[start:end]

    def _on_header_end(self) -> None:
        name = bytes(self._part.header_name).decode("latin-1").lower()
        self._part.headers[name] = bytes(self._part.header_value).decode("utf-8", "replace")
        self._part.header_name.clear()
        self._part.header_value.clear()

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._part.headers.get("content-disposition", ""))
        self._part.name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = options.get(b"filename")
        if raw_filename is not None:
            self._part.filename = raw_filename.decode("utf-8", "replace")
        if self._part.name == FILE_FIELD and self._part.filename is not None:
            if self._file_seen:
                raise UploadRefused("Send one file per import.")
            self._file_seen = True
            self._in_file = True
            # only fields sent before the file count (the CSRF token must precede the file)
            self.fields_before_file = dict(self.fields)
            self.filename = self._part.filename

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._pending.append(bytes(data[start:end]))
            return
        self._part.value += data[start:end]
        if len(self._part.value) > MAX_FIELD_BYTES:
            raise UploadRefused(f"The form field {self._part.name[:40]!r} is too long.")

    def _on_part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self._file_done = True
        elif self._part.name and self._part.filename is None:
            self.fields[self._part.name] = bytes(self._part.value).decode("utf-8", "replace")

    async def _feed(self) -> bool:
        chunk = await self._body.next()
        if chunk is None:
            return False
        self._parser.write(chunk)
        return True

    async def read_fields(self) -> None:
        """Parse up to the start of the file part (the fields before it are then known)."""
        while not self._file_seen:
            if not await self._feed():
                self._parser.finalize()
                raise UploadRefused("The form has no file: choose a CSV file to import.")

    async def file_chunks(self) -> AsyncIterator[bytes]:
        while True:
            if self._pending:
                pending, self._pending = self._pending, []
                for piece in pending:
                    if piece:
                        yield piece
            if self._file_done:
                break
            if not await self._feed():
                raise UploadRefused("The upload ended in the middle of the file.")
        # the rest of the body (closing boundary, trailing fields) is read and ignored
        while await self._feed():
            pass


@dataclass
class Upload:
    """A file being received: its name, the form fields sent before it, its bytes once."""

    filename: str
    fields: dict[str, str]
    _chunks: AsyncIterator[bytes]
    size: int = 0
    charset: str = ""  # a raw body's Content-Type charset, as sent
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive, counted and hashed on the way."""
        async for chunk in self._chunks:
            self.size += len(chunk)
            self._hash.update(chunk)
            yield chunk


async def open_upload(request: Request, limits: BodyLimits) -> Upload:
    """Start receiving the request's CSV: multipart field `file`, or a raw text/csv body.

    Returns once the form fields before the file are known (the caller checks the CSRF
    token among them before reading any of the file).
    """
    try:
        check_declared_length(request, limits)
    except BodyRefused as exc:
        raise UploadRefused(_upload_message(exc), exc.status) from None
    body = _Body(request, limits)
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise UploadRefused("The multipart body has no boundary.")
        multipart = _MultipartFile(body, boundary)
        await multipart.read_fields()
        filename = (multipart.filename or "").strip()
        if not filename:
            raise UploadRefused("Choose a CSV file to import.")
        return Upload(
            filename=filename, fields=multipart.fields_before_file, _chunks=multipart.file_chunks()
        )
    if content_type in RAW_CSV_TYPES:
        return Upload(
            filename=request.query_params.get("filename", "") or "(request body)",
            fields={},
            _chunks=_raw_chunks(body),
            charset=options.get(b"charset", b"").decode("latin-1").strip(),
        )
    raise UploadRefused("Send the CSV as multipart/form-data (field 'file') or as text/csv.")


async def _raw_chunks(body: _Body) -> AsyncIterator[bytes]:
    while (chunk := await body.next()) is not None:
        yield chunk


@dataclass(frozen=True)
class CsvHeader:
    """The header record as sent (its bytes, without a byte order mark), and how many
    physical lines it spans."""

    raw: bytes
    lines: int
    bom: bool = False


EMPTY_FILE = "the file is empty: the first line must name the columns"
BLANK_FIRST_LINE = (
    "line 1 is blank: the first line must name the columns "
    "(delete the blank lines above the header)"
)


class HeaderError(Exception):
    """The file's first record is missing or unreadable."""


class _LineEndScanner:
    """Finds the first line end (LF, CRLF or CR) outside quotes, resuming where it stopped.

    Resuming keeps a header that arrives a byte at a time linear to scan.
    """

    def __init__(self) -> None:
        self._position = 0
        self._in_quotes = False

    def end(self, buffer: bytearray, *, complete: bool) -> int:
        """Index just past the line end, or -1 when it has not arrived within MAX_HEADER_BYTES.

        A CR as the last byte may be the start of a CRLF: it counts only when `complete`.
        """
        while self._position < min(len(buffer), MAX_HEADER_BYTES):
            index = self._position
            byte = buffer[index]
            if byte == 0x22:
                self._in_quotes = not self._in_quotes
            elif not self._in_quotes and byte == 0x0A:
                return index + 1
            elif not self._in_quotes and byte == 0x0D:
                if index + 1 < len(buffer):
                    return index + 2 if buffer[index + 1] == 0x0A else index + 1
                return index + 1 if complete else -1
            self._position += 1
        return -1


def count_line_breaks(text: str) -> int:
    """Physical line breaks in `text`, whichever of LF, CRLF or CR ends its lines."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


async def split_header(chunks: AsyncIterator[bytes]) -> tuple[CsvHeader, AsyncIterator[bytes]]:
    """Read the header record (BOM dropped) and return it with an iterator over the rest."""
    buffer = bytearray()
    scanner = _LineEndScanner()
    bom_checked = False
    bom = False
    kind_checked = False
    exhausted = False
    while True:
        chunk = await anext(chunks, None)
        exhausted = chunk is None
        buffer += chunk or b""
        if not bom_checked:
            if not exhausted and len(buffer) < len(UTF8_BOM) and UTF8_BOM.startswith(buffer):
                continue
            if buffer.startswith(UTF8_BOM):
                del buffer[: len(UTF8_BOM)]
                bom = True
            bom_checked = True
        if not kind_checked and len(buffer) >= file_kinds.SIGNATURE_BYTES:
            # before the first line end is looked for: a workbook may have none for megabytes
            kind_checked = True
            if refused := file_kinds.refusal(bytes(buffer[: file_kinds.SIGNATURE_BYTES])):
                raise HeaderError(refused)
        end = scanner.end(buffer, complete=exhausted)
        if end >= 0:
            break
        if len(buffer) > MAX_HEADER_BYTES:
            raise HeaderError(f"line 1: the header row is longer than {MAX_HEADER_BYTES} bytes")
        if exhausted:
            end = len(buffer)
            break
    if not kind_checked and (refused := file_kinds.refusal(bytes(buffer))):
        raise HeaderError(refused)  # a file, or a first line sent in bits, shorter than that
    raw, rest = bytes(buffer[:end]), bytes(buffer[end:])
    if not raw.strip():
        # blank lines above the header, or nothing at all: read on (as far as a header may
        # reach) to tell which
        text_follows = bool(rest.strip())
        seen = len(rest)
        while not text_follows and not exhausted and seen <= MAX_HEADER_BYTES:
            chunk = await anext(chunks, None)
            exhausted = chunk is None
            if chunk:
                seen += len(chunk)
                text_follows = bool(chunk.strip())
        raise HeaderError(BLANK_FIRST_LINE if text_follows else EMPTY_FILE)
    if refused := file_kinds.header_refusal(raw):
        raise HeaderError(refused)
    # line breaks are the same bytes in every supported encoding
    text = raw.decode("latin-1")
    header = CsvHeader(raw=raw, lines=count_line_breaks(text.rstrip("\r\n")) + 1, bom=bom)

    async def remaining() -> AsyncIterator[bytes]:
        if rest:
            yield rest
        if not exhausted:
            async for more in chunks:
                yield more

    return header, remaining()
