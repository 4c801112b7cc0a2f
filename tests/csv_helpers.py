"""Helpers shared by the CSV import/export tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx

from tests.conftest import LoggedIn

USERS_HEADER = "username,email,full_name,is_active\n"


async def upload(
    client: LoggedIn,
    table: str,
    content: bytes | str,
    *,
    mode: str = "insert",
    filename: str = "data.csv",
    json: bool = True,
) -> httpx.Response:
    """POST the file as the browser form does (token first, then mode, then the file)."""
    body = content.encode() if isinstance(content, str) else content
    headers = {"Accept": "application/json"} if json else {}
    return await client.http.post(
        f"/{table}/import",
        data={"csrf_token": client.csrf, "mode": mode},
        files={"file": (filename, body, "text/csv")},
        headers=headers,
    )


async def table_rows(conn: asyncpg.Connection, table: str) -> list[dict[str, Any]]:
    """Every row with every column (version and updated_at included), in id order."""
    return [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY id")]


def user_lines(count: int, start: int = 0) -> list[str]:
    return [f"user{i:07d},user{i}@example.com,User {i},true\n" for i in range(start, start + count)]


async def post_raw(
    client: LoggedIn, path: str, content: bytes | str | AsyncIterator[bytes]
) -> httpx.Response:
    """POST the file as a raw CSV body (the API's way), asking for the JSON answer."""
    return await client.http.post(
        path,
        content=content.encode() if isinstance(content, str) else content,
        headers={
            "Content-Type": "text/csv",
            "Accept": "application/json",
            "X-CSRF-Token": client.csrf,
        },
    )
