"""Helpers for tests of resource pages: rows of a list, forged cursors, sortable columns."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

USER_SORTS = ("id", "username", "email", "full_name", "is_active", "created_at")
ORDER_SORTS = ("id", "user_id", "status", "total", "created_at", "updated_at")


def row_ids(html: str) -> list[int]:
    """The ids of a list's rows (single integer keys), in page order."""
    return [int(m) for m in re.findall(r'<tr id="row-(\d+)"', html)]


def make_cursor(sort: str, value: Any, key: list[Any]) -> str:
    """A cursor as the list writes it: [sort column, its value as text, [key parts]]."""
    text = None if value is None else str(value)
    payload = json.dumps([sort, text, [str(k) for k in key]], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
