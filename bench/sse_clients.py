"""SSE load from several client processes, for benchmarks that must not measure the client.

One Python process reading thousands of streams (TLS ones above all) runs out of CPU before
the server does, and then its own queueing shows up as server latency. Here the streams are
split over `procs` uvloop processes, each reading by protocol callbacks (no task per
stream). Every stream decodes its chunked body and counts the order events it receives;
the probe streams (spread over the processes and targets) also stamp each order when its
event is complete. The driver then checks that every stream got every committed order
exactly once, and computes commit-to-receipt latency from the probes. With `gzip` (the
default, as browsers ask) every stream sends `Accept-Encoding: gzip` and, when answered
compressed, inflates its body (zlib, in C) before counting.

Client mode (run by `run`): python bench/sse_clients.py CONFIG_JSON
Each process prints "ready" once all its streams have their response head, then reads
until a line arrives on stdin, and prints one JSON line with what it received.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import cast

ORDER = re.compile(rb"Order #(\d+)<")
MARKER = b"event: order\r\n"
SPAN = len(MARKER) - 1


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    tls: bool


@dataclass
class Outcome:
    """What all client processes received, merged."""

    receipts: dict[int, list[float]] = field(default_factory=dict)
    probes: int = 0
    # order events received per stream, and streams the server closed before the end
    counts: list[int] = field(default_factory=list)
    closed_early: int = 0
    bytes_received: int = 0
    # streams answered with Content-Encoding: gzip
    compressed: int = 0
    # the bodies after inflating
    bytes_decoded: int = 0
    # CPU seconds the drains took to inflate their bodies after the run
    inflate_seconds: float = 0.0
    pids: list[int] = field(default_factory=list)


def _tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the CI certificate is self-signed
    return context


class _Stream(asyncio.Protocol):
    """One drain stream: counts order events on the body, nothing else. Its reads must
    cost next to nothing: 2,000 plain streams at 500 events/s are ~400 MB/s into these
    processes. Sent in HTTP/1.0, so nginx sends the body as it is (see `_client`); uvicorn
    chunks it anyway, one chunk per send, so a plain body is counted as it comes (a chunk
    header never splits a release) and a compressed one is taken out of its chunks first.
    A marker split anyway would go uncounted, so a miscount can only be low: a wrong
    stream.

    A compressed drain keeps its bytes and inflates them once the run is over (`settle`):
    a browser inflates on its own machine, while here the clients share the server's
    cores, and inflating ~400 MB/s live took the CPU the server needed (the streams'
    receive queues grew to 140 MB while the server's send queues stayed empty). The
    probes inflate as they read, since they time each event."""

    def __init__(self, request: bytes) -> None:
        self._request = request
        self._carry = b""  # the last bytes, for a marker split across two reads
        self._transport: asyncio.BaseTransport | None = None
        self._head = b""
        self.head = False
        self.events = 0
        self.received = 0
        self.decoded = 0
        self.inflate: zlib._Decompress | None = None
        self.chunked = False
        self._kept: list[bytes] = []
        self.inflate_seconds = 0.0
        self._raw = b""  # an incomplete chunk-size line
        self._left = 0  # data bytes of the current chunk still to come
        self._skip = 0  # bytes of a chunk's closing CRLF still to skip
        self.ended = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        # uvloop's transports are not asyncio.Transport subclasses
        cast(asyncio.WriteTransport, transport).write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed before the response: {exc}"))

    def _body(self, data: bytes) -> bytes | None:
        """The body part of `data`, once the response head is complete and a 200."""
        buf = self._head + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self._head = buf
            return None
        self._head = b""
        self.head = True
        head = buf[: end + 2].lower()
        if b"\r\ncontent-encoding: gzip\r\n" in head:
            self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.chunked = b"\r\ntransfer-encoding: chunked\r\n" in head
        status = buf[: buf.find(b"\r\n")]
        if b" 200 " not in status + b" ":
            self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
            assert self._transport is not None
            self._transport.close()
            return None
        self.opened.set_result(None)
        return buf[end + 4 :]

    def _dechunk(self, data: bytes) -> bytes:
        """The data in `data` of an HTTP/1.1 chunked body, as far as it goes."""
        buf = self._raw + data if self._raw else data
        pos, size, parts = 0, len(buf), []
        while pos < size:
            if self._skip:
                step = min(self._skip, size - pos)
                pos += step
                self._skip -= step
            elif self._left == 0:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                self._left = int(buf[pos:eol].split(b";", 1)[0], 16)
                pos = eol + 2
                if self._left == 0:
                    self._skip = 2  # the last chunk: its empty trailer
            else:
                take = min(self._left, size - pos)
                parts.append(buf[pos : pos + take])
                pos += take
                self._left -= take
                if self._left == 0:
                    self._skip = 2  # the CRLF closing the chunk's data
        self._raw = buf[pos:]
        return b"".join(parts)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if not self.head:
            body = self._body(data)
            if body is None:
                return
            data = body
        if self.inflate is not None:
            self._kept.append(data)
            return
        self._count(data)

    def settle(self) -> None:
        """Inflate and count what a compressed drain kept."""
        if not self._kept or self.inflate is None:
            return
        started = time.process_time()
        for data in self._kept:
            self._count(self.inflate.decompress(self._dechunk(data) if self.chunked else data))
        self._kept = []
        self.inflate_seconds = time.process_time() - started

    def _count(self, data: bytes) -> None:
        self.decoded += len(data)
        # the first term sees only markers starting in the carry, the second the others
        self.events += (self._carry + data[:SPAN]).count(MARKER) + data.count(MARKER)
        self._carry = data[-SPAN:] if len(data) >= SPAN else (self._carry + data)[-SPAN:]


class _Probe(_Stream):
    """A stream that also decodes its chunked body and stamps each order's receipt."""

    def __init__(self, request: bytes, receipts: dict[int, list[float]]) -> None:
        super().__init__(request)
        self._receipts = receipts
        self._tail = b""  # decoded text after the last complete event

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.received += len(data)
        if not self.head:
            body = self._body(data)
            if body is None:
                return
            data = body
        body = self._dechunk(data) if self.chunked else data
        if not body:
            return
        if self.inflate is not None:
            body = self.inflate.decompress(body)
        self.decoded += len(body)
        *complete, self._tail = (self._tail + body).split(b"\r\n\r\n")
        for event in complete:
            if MARKER in event:
                self.events += 1
                match = ORDER.search(event)
                if match is not None:
                    self._receipts.setdefault(int(match.group(1)), []).append(now)


async def _client(config: dict[str, object]) -> None:
    loop = asyncio.get_running_loop()
    targets = [Target(**t) for t in cast(list[dict[str, object]], config["targets"])]
    cookie = cast(str, config["cookie"])
    count = cast(int, config["count"])
    probes = set(cast(list[int], config["probes"]))
    first = cast(int, config["first"])
    coding = "Accept-Encoding: gzip\r\n" if config.get("gzip", True) else ""
    head = f"GET /events HTTP/1.{{}}\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n{coding}\r\n"
    # Probes ask as browsers do (HTTP/1.1). Drains ask in HTTP/1.0, so that nginx sends
    # them the body as it is: its HTTP/1.1 chunk headers fall wherever its reads end,
    # inside an event too, and the drains' count would then miss it.
    probe_request, drain_request = head.format(1).encode(), head.format(0).encode()
    receipts: dict[int, list[float]] = {}
    context = _tls()
    streams: list[_Stream] = []
    transports = []
    for start in range(0, count, 50):
        batch = []
        for i in range(start, min(start + 50, count)):
            n = first + i
            target = targets[n % len(targets)]
            if n in probes:
                stream: _Stream = _Probe(probe_request, receipts)
            else:
                stream = _Stream(drain_request)
            transport, _ = await loop.create_connection(
                lambda s=stream: s, target.host, target.port, ssl=context if target.tls else None
            )
            transports.append(transport)
            batch.append(stream)
        async with asyncio.timeout(60):
            await asyncio.gather(*(stream.opened for stream in batch))
        streams += batch
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    ended = [s.ended for s in streams]
    for transport in transports:
        transport.close()
    for stream in streams:
        stream.settle()
    out = {
        "receipts": receipts,
        "counts": [s.events for s in streams],
        "closed_early": sum(ended),
        "bytes": sum(s.received for s in streams),
        "decoded": sum(s.decoded for s in streams),
        "compressed": sum(s.inflate is not None for s in streams),
        "inflate_seconds": sum(s.inflate_seconds for s in streams),
    }
    print(json.dumps(out), flush=True)


class Clients:
    """`count` streams over `procs` processes; streams go round-robin over `targets`."""

    def __init__(
        self,
        targets: list[Target],
        cookie: str,
        count: int,
        *,
        procs: int,
        probes: int,
        gzip: bool = True,
    ) -> None:
        if count < 1 or procs < 1 or probes < 1:
            raise ValueError(f"count, procs, probes must be positive: {count}, {procs}, {probes}")
        self.targets, self.cookie, self.count = targets, cookie, count
        self.gzip = gzip
        self.procs = min(procs, count)
        self.probes = min(probes, count)
        # spread over processes and targets alike
        self.probe_ids = [i * count // self.probes for i in range(self.probes)]
        self._running: list[asyncio.subprocess.Process] = []

    async def start(self) -> list[int]:
        """Open every stream; returns the client processes' pids."""
        share = -(-self.count // self.procs)
        for first in range(0, self.count, share):
            config = {
                "targets": [t.__dict__ for t in self.targets],
                "cookie": self.cookie,
                "count": min(share, self.count - first),
                "first": first,
                "probes": self.probe_ids,
                "gzip": self.gzip,
            }
            proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, json.dumps(config),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**28,
            )  # fmt: skip
            self._running.append(proc)
        for proc in self._running:
            assert proc.stdout is not None
            line = await proc.stdout.readline()
            if line.strip() != b"ready":
                raise RuntimeError(f"client process failed to open its streams: {line[:200]!r}")
        return [proc.pid for proc in self._running]

    async def finish(self) -> Outcome:
        outcome = Outcome(probes=self.probes, pids=[p.pid for p in self._running])
        for proc in self._running:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(b"stop\n")
            await proc.stdin.drain()
        for proc in self._running:
            assert proc.stdout is not None
            out = json.loads(await proc.stdout.readline())
            await proc.wait()
            for order_id, times in out["receipts"].items():
                outcome.receipts.setdefault(int(order_id), []).extend(times)
            outcome.counts += out["counts"]
            outcome.closed_early += out["closed_early"]
            outcome.bytes_received += out["bytes"]
            outcome.bytes_decoded += out["decoded"]
            outcome.compressed += out["compressed"]
            outcome.inflate_seconds += out["inflate_seconds"]
        self._running = []
        return outcome


if __name__ == "__main__":
    import uvloop

    uvloop.run(_client(json.loads(sys.argv[1])))
