"""The downloadable list of every problem of a rejected file: its rows as sent, each with
the line it started on and what is wrong, ready to fix and upload again (the two added
columns are ignored by an import).

Kept on the local disk (shared by the panel's processes) for KEEP_SECONDS under a random
token that names its owner, and sent only to that staff member.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
import secrets
import tempfile
import time
from pathlib import Path

import asyncpg

DIRECTORY = Path(tempfile.gettempdir()) / "admin-csv-errors"
KEEP_SECONDS = 3600
LINE_COLUMN = "import line"
PROBLEM_COLUMN = "import problem"
UTF8_BOM = b"\xef\xbb\xbf"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")


def _path(owner: int, token: str) -> Path:
    return DIRECTORY / f"{int(owner)}-{token}.csv"


def _sweep() -> None:
    cutoff = time.time() - KEEP_SECONDS
    for old in DIRECTORY.glob("*.csv"):
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < cutoff:
                old.unlink()


async def write(conn: asyncpg.Connection, sql: str, header: list[str], owner: int) -> str | None:
    """Run `sql` (rows: the fields, line, problem) into a new error file; its token."""
    token = secrets.token_urlsafe(18)
    path = _path(owner, token)
    try:
        await asyncio.to_thread(DIRECTORY.mkdir, mode=0o700, exist_ok=True)
        await asyncio.to_thread(_sweep)
        first = io.StringIO()
        csv.writer(first, lineterminator="\r\n").writerow([*header, LINE_COLUMN, PROBLEM_COLUMN])
        out = await asyncio.to_thread(open, path, "wb")
        try:
            # with a BOM, as spreadsheets expect; the import takes it
            out.write(UTF8_BOM + first.getvalue().encode("utf-8"))

            async def put(chunk: bytes) -> None:
                out.write(chunk)

            await conn.copy_from_query(sql, output=put, format="csv")
        finally:
            out.close()
    except (OSError, asyncpg.PostgresError):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return token


def find(owner: int, token: str) -> Path | None:
    """The owner's error file named by `token`, if it is still kept."""
    if not _TOKEN.fullmatch(token):
        return None
    path = _path(owner, token)
    return path if path.is_file() else None
