"""The device cookie: this browser has logged in as this staff member before.

Set at each successful login (a new random device id each time), signed, long-lived. A
login attempt that carries one naming the username typed is judged by that device's own
failures only (admin/staff/throttle.py), so an attacker guessing elsewhere cannot keep the owner
out. It grants nothing else: the password is still checked.
"""

from __future__ import annotations

import functools
import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection
from starlette.responses import Response

from admin.settings import Settings
from admin.staff.sessions import wants_secure_cookies

COOKIE_NAME = "admin_device"
MAX_AGE_SECONDS = 365 * 24 * 3600


@functools.lru_cache(maxsize=4)
def _serializer_for(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="admin.device")


def known_device(request: HTTPConnection, settings: Settings, username: str) -> str | None:
    """The device id when the browser's device cookie is valid and names `username`."""
    raw = request.cookies.get(COOKIE_NAME)
    if not raw:
        return None
    try:
        payload: Any = _serializer_for(settings.secret_key).loads(raw, max_age=MAX_AGE_SECONDS)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(payload, dict) or payload.get("u") != username:
        return None
    device = payload.get("d")
    return device if isinstance(device, str) and len(device) >= 16 else None


def remember(
    response: Response, request: HTTPConnection, settings: Settings, username: str
) -> None:
    """Mark this browser as a known device of `username` (replacing any earlier one)."""
    value = {"u": username, "d": secrets.token_urlsafe(18)}
    response.set_cookie(
        COOKIE_NAME,
        _serializer_for(settings.secret_key).dumps(value),
        max_age=MAX_AGE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=wants_secure_cookies(request, settings),
        path="/",
    )
