"""The signed session cookie: who is logged in, the CSRF token, flash messages.

A logged-in session carries a random id (so that "Log out" can revoke this one cookie,
see admin/staff/revocations.py) and its login time: it ends `session_idle_hours` after its last
use and, whatever the activity, `session_max_hours` after the login. Cookies are Secure
whenever the request came over https, and always with SECURE_COOKIES=true.
"""

from __future__ import annotations

import functools
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection
from starlette.responses import Response

from admin.settings import Settings

COOKIE_NAME = "admin_session"
# Re-sign the cookie at most this often to keep the idle clock moving.
REFRESH_AFTER_SECONDS = 60


@dataclass
class Session:
    staff_id: int | None = None
    staff_version: int = 0
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    flashes: list[tuple[str, str]] = field(default_factory=list)
    issued_at: float = field(default_factory=time.time)
    changed: bool = True
    session_id: str | None = None
    logged_in_at: float | None = None
    over_https: bool = False

    def log_in(self, staff_id: int, staff_version: int) -> None:
        """A fresh session (new id and CSRF token) so that a pre-login cookie cannot be fixated."""
        self.staff_id = staff_id
        self.staff_version = staff_version
        self.csrf_token = secrets.token_urlsafe(32)
        self.session_id = secrets.token_urlsafe(18)
        self.logged_in_at = time.time()
        self.changed = True

    def expires_at(self, settings: Settings) -> float:
        """When this login ends whatever the activity (the absolute lifetime)."""
        return (self.logged_in_at or time.time()) + settings.session_max_hours * 3600

    def follow_version(self, staff_version: int) -> None:
        """Keep this session valid after its own change bumped the member's session_version."""
        self.staff_version = staff_version
        self.changed = True

    def log_out(self) -> None:
        self.staff_id = None
        self.staff_version = 0
        self.csrf_token = secrets.token_urlsafe(32)
        self.session_id = None
        self.logged_in_at = None
        self.changed = True

    def flash(self, message: str, kind: str = "info") -> None:
        self.flashes.append((kind, message))
        self.changed = True

    def pop_flashes(self) -> list[tuple[str, str]]:
        messages, self.flashes = self.flashes, []
        if messages:
            self.changed = True
        return messages

    def to_payload(self) -> dict[str, Any]:
        return {
            "s": self.staff_id,
            "v": self.staff_version,
            "c": self.csrf_token,
            "f": self.flashes,
            "i": self.session_id,
            "t": self.logged_in_at,
        }

    @classmethod
    def from_payload(cls, payload: Any, issued_at: float) -> Session | None:
        if not isinstance(payload, dict):
            return None
        staff_id, version, token = payload.get("s"), payload.get("v"), payload.get("c")
        flashes = payload.get("f") or []
        if staff_id is not None and not isinstance(staff_id, int):
            return None
        if not isinstance(version, int) or not isinstance(token, str) or len(token) < 32:
            return None
        session_id, logged_in_at = payload.get("i"), payload.get("t")
        if staff_id is not None and (
            not isinstance(session_id, str)
            or not isinstance(logged_in_at, (int, float))
            or isinstance(logged_in_at, bool)
        ):
            return None
        return cls(
            staff_id=staff_id,
            staff_version=version,
            csrf_token=token,
            flashes=[(str(k), str(m)) for k, m in flashes][:10],
            issued_at=issued_at,
            changed=False,
            session_id=session_id if staff_id is not None else None,
            logged_in_at=float(logged_in_at) if staff_id is not None else None,
        )


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return _serializer_for(settings.secret_key)


@functools.lru_cache(maxsize=4)
def _serializer_for(secret_key: str) -> URLSafeTimedSerializer:
    # built once per key: every request of a logged-in member verifies its cookie
    return URLSafeTimedSerializer(secret_key, salt="admin.session")


@functools.lru_cache(maxsize=4096)
def _verified(raw: str, secret_key: str) -> tuple[Any, datetime] | None:
    """The signed payload of a cookie and when it was signed, or None when the signature
    does not hold. Kept per cookie text: a dashboard's every request sends the same one,
    and the same text always verifies the same way (its age is checked by the caller)."""
    try:
        payload, issued = _serializer_for(secret_key).loads(raw, return_timestamp=True)
    except (BadSignature, ValueError, TypeError):
        return None
    return payload, issued


def wants_secure_cookies(request: HTTPConnection, settings: Settings) -> bool:
    """Secure when configured, and whenever the browser reached us over https."""
    return settings.secure_cookies or request.scope.get("scheme") == "https"


def load(request: HTTPConnection, settings: Settings) -> Session:
    """The request's session; a new anonymous one if the cookie is missing, tampered or idle."""
    session = _load_cookie(request, settings)
    session.over_https = wants_secure_cookies(request, settings)
    return session


def _load_cookie(request: HTTPConnection, settings: Settings) -> Session:
    raw = request.cookies.get(COOKIE_NAME)
    if raw:
        max_age = int(settings.session_idle_hours * 3600)
        payload, issued = _verified(raw, settings.secret_key) or (None, None)
        if issued is not None and time.time() - issued.timestamp() > max_age:
            payload, issued = None, None
        if issued is not None:
            session = Session.from_payload(payload, issued.timestamp())
            if session is not None and session.staff_id is not None:
                if time.time() >= session.expires_at(settings):
                    ended = Session()
                    ended.flash("Your session has ended. Please log in again.", "warning")
                    return ended
            if session is not None:
                if time.time() - session.issued_at > REFRESH_AFTER_SECONDS:
                    session.changed = True
                return session
    return Session()


def save(response: Response, session: Session, settings: Settings) -> None:
    """Write the cookie when anything changed (or the idle clock needs a push)."""
    if not session.changed:
        return
    response.set_cookie(
        COOKIE_NAME,
        _serializer(settings).dumps(session.to_payload()),
        max_age=int(settings.session_idle_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies or session.over_https,
        path="/",
    )
