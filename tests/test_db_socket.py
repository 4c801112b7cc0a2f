"""Pooled connections over a Unix socket send an import's COPY from a wider buffer."""

import dataclasses
import socket
from pathlib import Path

import pytest

from admin import db
from admin.settings import Settings


async def test_a_unix_socket_connection_gets_the_wider_send_buffer(settings: Settings) -> None:
    pool = await db.create_pool(dataclasses.replace(settings, pool_min_size=1, pool_max_size=1))
    try:
        async with pool.acquire() as conn:
            sock = conn._con._transport.get_extra_info("socket")
            if sock.family != socket.AF_UNIX:
                pytest.skip("the database is reached over TCP, whose buffers grow by themselves")
            granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await pool.close()
    most = int(Path("/proc/sys/net/core/wmem_max").read_text())
    default = int(Path("/proc/sys/net/core/wmem_default").read_text())
    # Linux doubles what it grants, for its own bookkeeping
    assert granted == 2 * min(db.UNIX_SEND_BUFFER_BYTES, most)
    assert granted > 2 * default or most <= default
