"""An upload received into a temporary file before any database work starts.

A client that trickles its upload then holds no pooled connection and no transaction (an
open import transaction has an xid, which holds back the live feed for everyone); COPY
reads the finished file at disk speed. The file is anonymous (the system deletes it when it
is closed), and memory stays at about one write batch whatever the file's size.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from typing import BinaryIO

# chunks are gathered into writes of about this size, each done off the event loop
WRITE_BATCH_BYTES = 1 << 20


async def spool(header: bytes, rest: AsyncIterator[bytes]) -> BinaryIO:
    """A temporary file holding `header` then `rest`, at offset 0.

    The caller closes it (which deletes it).
    """
    file = tempfile.TemporaryFile(prefix="csv-import-")
    try:
        batch = bytearray(header)
        async for chunk in rest:
            batch += chunk
            if len(batch) >= WRITE_BATCH_BYTES:
                await asyncio.to_thread(file.write, bytes(batch))
                batch.clear()
        await asyncio.to_thread(file.write, bytes(batch))
        await asyncio.to_thread(file.flush)
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return file
