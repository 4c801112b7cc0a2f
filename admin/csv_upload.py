"""An uploaded CSV file as a stream of bytes: multipart or raw body, size-limited and hashed.

Nothing is buffered beyond one network chunk: the multipart parser is fed chunk by chunk
and hands the file part's bytes on as they arrive, so the caller can pipe them into COPY.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

FILE_FIELD = "file"
MAX_FIELD_BYTES = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024
UTF8_BOM = b"\xef\xbb\xbf"
RAW_CSV_TYPES = (b"text/csv", b"application/csv", b"text/plain", b"application/octet-stream")


class UploadRefused(Exception):
    """The request body cannot be imported; `status` is the HTTP answer."""

    status = 400


class UploadTooLarge(UploadRefused):
    status = 413


class _Body:
    """The raw request body, chunk by chunk, refusing to go past `max_bytes`."""

    def __init__(self, request: Request, max_bytes: int) -> None:
        self._chunks = request.stream()
        self._max_bytes = max_bytes
        self.received = 0

    async def next(self) -> bytes | None:
        while True:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                return None
            self.received += len(chunk)
            if self.received > self._max_bytes:
                raise UploadTooLarge(
                    f"The upload is larger than {self._max_bytes // (1024 * 1024)} MB."
                )
            if chunk:
                return chunk


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


def check_declared_length(request: Request, max_bytes: int) -> None:
    """Refuse before reading anything when Content-Length already says the body is too big."""
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise UploadTooLarge(f"The upload is larger than {max_bytes // (1024 * 1024)} MB.")


async def open_upload(request: Request, max_bytes: int) -> Upload:
    """Start receiving the request's CSV: multipart field `file`, or a raw text/csv body.

    Returns once the form fields before the file are known (the caller checks the CSRF
    token among them before reading any of the file).
    """
    check_declared_length(request, max_bytes)
    body = _Body(request, max_bytes)
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
        )
    raise UploadRefused("Send the CSV as multipart/form-data (field 'file') or as text/csv.")


async def _raw_chunks(body: _Body) -> AsyncIterator[bytes]:
    while (chunk := await body.next()) is not None:
        yield chunk


@dataclass(frozen=True)
class CsvHeader:
    """The header record: column names as written, and how many physical lines it spans."""

    names: list[str]
    lines: int
    raw: bytes


class HeaderError(Exception):
    """The file's first record is missing or unreadable."""


def _header_end(buffer: bytes) -> int:
    """Index just past the first newline outside quotes, or -1 when the record is not complete."""
    in_quotes = False
    for index, byte in enumerate(buffer):
        if byte == 0x22:
            in_quotes = not in_quotes
        elif byte == 0x0A and not in_quotes:
            return index + 1
    return -1


async def split_header(
    chunks: AsyncIterator[bytes], parse_names: Callable[[str], list[str]]
) -> tuple[CsvHeader, AsyncIterator[bytes]]:
    """Read the header record (BOM dropped) and return it with an iterator over the rest."""
    buffer = b""
    end = -1
    exhausted = False
    while end < 0:
        chunk = await anext(chunks, None)
        if chunk is None:
            exhausted = True
            end = len(buffer)
            break
        buffer += chunk
        if buffer.startswith(UTF8_BOM):
            buffer = buffer[len(UTF8_BOM) :]
        end = _header_end(buffer[:MAX_HEADER_BYTES])
        if end < 0 and len(buffer) > MAX_HEADER_BYTES:
            raise HeaderError(f"line 1: the header row is longer than {MAX_HEADER_BYTES} bytes")
    raw, rest = buffer[:end], buffer[end:]
    if not raw.strip():
        raise HeaderError("the file is empty: the first line must name the columns")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HeaderError(f"line 1: the header row is not valid UTF-8 ({exc.reason})") from None
    names = parse_names(text)
    header = CsvHeader(names=names, lines=text.rstrip("\r\n").count("\n") + 1, raw=raw)

    async def remaining() -> AsyncIterator[bytes]:
        if rest:
            yield rest
        if not exhausted:
            async for more in chunks:
                yield more

    return header, remaining()
