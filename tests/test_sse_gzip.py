"""Compressed event streams: a gzip client gets the same events as a plain one, resumed
too; the compressed bytes of a release are made once and shared; a stream that ends
decodes to its last event; segments concatenate in any order."""

from __future__ import annotations

import asyncio
import signal
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from starlette.requests import Request

from admin.live import order_feed, sse_gzip
from admin.live.events import OrderEvent
from admin.live.hub import Batch, Broadcast, Subscription
from tests.conftest import TEST_SECRET_KEY
from tests.live import LiveServer, live_server
from tests.live_helpers import add_customer, event_ids, insert_orders, logged_in_client


@pytest.fixture
def server(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    with live_server(database_url, TEST_SECRET_KEY, tmp_path) as running:
        yield running


class RawStream:
    """/events read off the socket in HTTP/1.1: one chunk per server send, kept as sent,
    and the body as a browser decodes it (inflated when the server compressed it)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.head = b""
        self.chunks: list[bytes] = []
        self.body = b""
        self.inflate: zlib._Decompress | None = None
        self.ended = False

    @classmethod
    async def open(
        cls, port: int, cookie: str, *, gzip: bool, after: int | None = None
    ) -> RawStream:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        lines = [
            "GET /events HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            f"Cookie: {cookie}",
            "Accept: text/event-stream",
        ]
        if gzip:
            lines.append("Accept-Encoding: gzip, deflate, br")
        if after is not None:
            lines.append(f"Last-Event-ID: {after}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        stream = cls(reader, writer)
        stream.head = (await reader.readuntil(b"\r\n\r\n")).lower()
        assert stream.head.startswith(b"http/1.1 200"), stream.head[:200]
        assert b"\r\nvary: accept-encoding\r\n" in stream.head
        if b"\r\ncontent-encoding: gzip\r\n" in stream.head:
            stream.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return stream

    async def _chunk(self) -> bytes | None:
        size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await self.reader.readuntil(b"\r\n")
            self.ended = True
            return None
        return (await self.reader.readexactly(size + 2))[:-2]

    async def read_until(self, marker: bytes, seconds: float = 15.0) -> None:
        async with asyncio.timeout(seconds):
            while marker not in self.body:
                chunk = await self._chunk()
                if chunk is None:
                    return
                self.chunks.append(chunk)
                self.body += self.inflate.decompress(chunk) if self.inflate else chunk

    def events(self) -> list[bytes]:
        """Every order event's frame, byte for byte."""
        return [f for f in self.body.split(b"\r\n\r\n") if b"\r\nevent: order\r\n" in f]

    def close(self) -> None:
        self.writer.close()


async def _cookie(server: LiveServer, database_url: str) -> str:
    http = await logged_in_client(server.url, database_url, "watcher")
    cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
    await http.aclose()
    return cookie


def _port(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


async def test_a_gzip_client_decodes_the_same_events_as_a_plain_one_across_a_resume(
    server: LiveServer, database_url: str
):
    conn = await asyncpg.connect(database_url)
    customer = await add_customer(conn)
    cookie, port = await _cookie(server, database_url), _port(server)
    plain = await RawStream.open(port, cookie, gzip=False)
    compressed = await RawStream.open(port, cookie, gzip=True)
    assert plain.inflate is None and b"content-encoding" not in plain.head
    assert compressed.inflate is not None
    for stream in (plain, compressed):
        await stream.read_until(b"retry: ")
    assert compressed.chunks[0].startswith(sse_gzip.HEADER)

    await insert_orders(conn, customer, 3)
    first = await event_ids(conn)
    for stream in (plain, compressed):
        await stream.read_until(f"id: {first[-1]}\r\n".encode())
    # away while more orders come: they come back replayed, compressed for this client
    compressed.close()
    await insert_orders(conn, customer, 4)
    away = await event_ids(conn, first[-1])
    resumed = await RawStream.open(port, cookie, gzip=True, after=first[-1])
    await resumed.read_until(f"id: {away[-1]}\r\n".encode())
    # and live again: shared segments
    await insert_orders(conn, customer, 2)
    ids = await event_ids(conn)
    for stream in (plain, resumed):
        await stream.read_until(f"id: {ids[-1]}\r\n".encode())
    plain.close()
    resumed.close()
    await conn.close()

    assert len(plain.events()) == len(ids) == 9
    assert compressed.events() + resumed.events() == plain.events()
    # the chunks really were compressed: every one inflates, none is plain text
    assert all(b"event: order" not in chunk for chunk in compressed.chunks + resumed.chunks)


async def test_two_gzip_clients_get_the_same_compressed_bytes_for_each_release(
    server: LiveServer, database_url: str
):
    conn = await asyncpg.connect(database_url)
    customer = await add_customer(conn)
    cookie, port = await _cookie(server, database_url), _port(server)
    one = await RawStream.open(port, cookie, gzip=True)
    two = await RawStream.open(port, cookie, gzip=True)
    for stream in (one, two):
        await stream.read_until(b"retry: ")
    for _ in range(3):
        await insert_orders(conn, customer, 2)
        last = (await event_ids(conn))[-1]
        for stream in (one, two):
            await stream.read_until(f"id: {last}\r\n".encode())
    one.close()
    two.close()
    await conn.close()
    assert len(one.events()) == 6
    # after each client's own opening, every chunk is a shared segment: the same bytes
    assert len(one.chunks) >= 2 and one.chunks[1:] == two.chunks[1:]
    assert not any(chunk.startswith(sse_gzip.HEADER) for chunk in one.chunks[1:])


async def test_a_stream_ended_by_shutdown_decodes_to_its_last_event(
    server: LiveServer, database_url: str
):
    conn = await asyncpg.connect(database_url)
    customer = await add_customer(conn)
    cookie, port = await _cookie(server, database_url), _port(server)
    stream = await RawStream.open(port, cookie, gzip=True)
    await stream.read_until(b"retry: ")
    await insert_orders(conn, customer, 2)
    await stream.read_until(f"id: {(await event_ids(conn))[-1]}\r\n".encode())
    await conn.close()
    server.process.send_signal(signal.SIGINT)
    await stream.read_until(b"never sent")
    stream.close()
    # the response ended properly (its last chunk), and every segment inflated whole; the
    # gzip member has no trailer (see admin/live/sse_gzip.py), which zlib reads as unfinished
    assert stream.ended
    assert stream.inflate is not None and not stream.inflate.eof
    assert stream.inflate.flush() == b""
    assert len(stream.events()) == 2 and stream.body.endswith(b"\r\n\r\n")
    assert await asyncio.to_thread(server.process.wait, 30) == 0


def test_accept_encoding_is_read_as_http_says():
    accepted = ["gzip", "GZIP", "deflate, gzip;q=0.5", "x-gzip", "*", "br, *;q=0.1"]
    refused = ["", "identity", "br", "gzip;q=0", "gzip;q=0, *", "*;q=0", "gzip;q=x"]
    assert all(sse_gzip.accepts_gzip(h) for h in accepted)
    assert not any(sse_gzip.accepts_gzip(h) for h in refused)


def test_segments_concatenate_in_any_order_into_one_valid_gzip_body():
    parts = [b"id: 1\r\nevent: order\r\ndata: one\r\n\r\n", b": ping\n\n", b"x" * 70_000]
    for order in (parts, parts[::-1]):
        plain = b"".join(order)
        body = sse_gzip.HEADER + b"".join(sse_gzip.segment(part) for part in order)
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        assert inflate.decompress(body) == plain
        # valid as a whole: an empty final block and the trailer make a complete member
        trailer = b"\x03\x00" + struct.pack("<II", zlib.crc32(plain), len(plain))
        assert inflate.decompress(trailer) == b""
        assert inflate.eof and inflate.unused_data == b""


def _request(accept_encoding: str | None) -> Request:
    headers = [] if accept_encoding is None else [(b"accept-encoding", accept_encoding.encode())]
    return Request({"type": "http", "method": "GET", "path": "/events", "headers": headers})


def test_a_release_is_compressed_once_for_every_client_of_its_filter():
    now = datetime.now(UTC)
    events = tuple(OrderEvent(i, i, "created", {"status": "paid"}, now) for i in (11, 12))
    batch = Batch(events)
    heartbeat = Broadcast(b": ping\n\n")

    def client(accept_encoding: str | None) -> order_feed._OrderFeed:
        feed = order_feed._OrderFeed(
            _request(accept_encoding), Subscription(10, 8), None, False, None
        )
        assert feed.gzip == (accept_encoding is not None)
        return feed

    gzip_clients = [client("gzip, deflate") for _ in range(3)]
    plain_client = client(None)
    sent = [feed.render(batch) for feed in gzip_clients]
    plain = plain_client.render(batch)
    # made once, cached beside the plain bytes: every client got that very object
    shared = batch.frames[("gzip", None)]
    assert all(chunk is shared for chunk in sent)
    assert set(batch.frames) == {None, ("gzip", None)}
    assert plain is batch.frames[None]
    assert zlib.decompressobj(-zlib.MAX_WBITS).decompress(shared) == plain
    assert all(feed.render(heartbeat) is heartbeat.compressed for feed in gzip_clients)
    assert plain_client.render(heartbeat) is heartbeat.frame
