"""Compressed event streams through nginx: the instances' gzip passes through untouched to
HTTP/1.1 and HTTP/2 clients (curl speaks both), and a client that does not ask for it
gets the plain stream."""

from __future__ import annotations

import asyncio
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.topology.conftest import URL, Admin

pytestmark = pytest.mark.skipif(not URL, reason="needs the topology of deploy/ci/topology.sh")


def _curl(path: str, cookie: str, protocol: str, gzip: bool, out: Path) -> tuple[str, bytes]:
    """The head and the body of a stream read for two seconds."""
    command = ["curl", "-sk", protocol, "--max-time", "2", "-H", f"Cookie: {cookie}"]
    if gzip:
        command += ["-H", "Accept-Encoding: gzip"]
    head = out.with_suffix(".head")
    command += ["-D", str(head), "-o", str(out), URL + path]
    # 28: the time limit ended the stream, as it must
    assert subprocess.run(command, check=False).returncode == 28
    return head.read_text().lower(), out.read_bytes()


@pytest.mark.parametrize("path", ["/events", "/live/changes"])
@pytest.mark.parametrize("protocol", ["--http1.1", "--http2"])
async def test_streams_pass_through_nginx_compressed_or_plain_as_asked(
    admin: Admin, path: str, protocol: str, tmp_path: Path
):
    cookie = "; ".join(f"{name}={value}" for name, value in admin.http.cookies.items())
    head, body = await asyncio.to_thread(_curl, path, cookie, protocol, True, tmp_path / "gz")
    assert head.startswith("http/2 200" if protocol == "--http2" else "http/1.1 200"), head
    assert "\ncontent-encoding: gzip" in head and "\nvary: accept-encoding" in head, head
    assert body.startswith(b"\x1f\x8b")
    assert zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body).startswith(b": live\r\n")
    head, body = await asyncio.to_thread(_curl, path, cookie, protocol, False, tmp_path / "raw")
    assert "content-encoding" not in head, head
    assert body.startswith(b": live\r\n")
