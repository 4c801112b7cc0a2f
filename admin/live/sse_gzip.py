"""Gzip for the event streams, with compressed bytes that many clients share.

A gzip body is a 10-byte header, one deflate stream, and a trailer (CRC-32 and length of
the plain data). A per-client compressor would cost one compression per client per
release. Instead every chunk after the header is a *segment*: the output of a fresh raw
deflate compressor, ended with a sync flush. A segment is a run of non-final blocks that
ends on a byte boundary and refers to no data before it, so segments concatenate, in any
order, into one valid deflate stream. A release's segment is therefore computed once and
cached beside its plain frames, and the same bytes go to every client that shares them;
only what is a client's own (opening, replay) is compressed for that client alone.

No trailer: an event stream has no natural end, and the CRC-32 of everything a client
was sent would cost each client a pass over every release (1.4 us per client for a
dozen feed items, against 21 us for the one compression they all share: at 2,000
clients, 130 times as much; BENCHMARKS.md). A stream that ends, properly or not, just
stops: a decoder has inflated every complete segment by then, and EventSource
reconnects and resumes from its last id as after any end (Chromium logs no decoding
error for it: tests/e2e/test_live_gzip.py).
"""

from __future__ import annotations

import zlib

# A dozen feed items: level 6 is 11% smaller than level 1 for 10 us more, paid once per
# release and filter while the bytes saved are saved for every client (BENCHMARKS.md)
LEVEL = 6
# magic, deflate, no flags, no mtime, no extra flags, OS unknown
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
HEADERS = [(b"content-encoding", b"gzip"), (b"vary", b"accept-encoding")]
PLAIN_HEADERS = [(b"vary", b"accept-encoding")]


def segment(data: bytes) -> bytes:
    """`data` deflated on its own, byte-aligned and non-final: concatenates with any other."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (RFC 9110: `gzip`, `x-gzip` or `*`,
    with a q-value above zero; an explicit `gzip;q=0` refuses it even after `*`)."""
    allowed: dict[str, bool] = {}
    for item in accept_encoding.lower().split(","):
        name, _, params = item.partition(";")
        name = name.strip()
        if not name:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        allowed[name] = quality > 0
    for name in ("gzip", "x-gzip"):
        if name in allowed:
            return allowed[name]
    return allowed.get("*", False)
