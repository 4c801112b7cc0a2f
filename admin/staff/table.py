"""The staff table: panel accounts, their roles, and the rules that keep one admin active.

session_version is what every signed session carries; bumping it ends every session of
that member on their next request. It is bumped on deactivation, on a password change
or reset, and on "log out everywhere" (the cookie is signed, not stored, so this is what
makes copied cookies useless). A plain logout revokes only its own session's id
(admin/staff/revocations.py), which the per-request lookup checks. A role change is not a bump:
the guard reloads the role on every request, so the new role applies to the very next one
without logging anyone out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from admin.staff.passwords import hash_password_async
from admin.web.forms import has_control_characters

ROLES = ("staff", "admin")
USERNAME_RE = re.compile(r"[a-z0-9._-]{3,50}")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


class LastActiveAdmin(Exception):
    """The change would leave the panel without an active admin."""


class StaffNotFound(Exception):
    """No staff member has that id."""


@dataclass(frozen=True)
class StaffMember:
    id: int
    username: str
    role: str
    is_active: bool
    session_version: int
    time_zone: str = "UTC"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> StaffMember:
        return cls(
            id=row["id"],
            username=row["username"],
            role=row["role"],
            is_active=row["is_active"],
            session_version=row["session_version"],
            time_zone=row["time_zone"],
        )


@dataclass(frozen=True)
class StaffListing:
    id: int
    username: str
    role: str
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


_COLUMNS = "id, username, role, is_active, session_version, time_zone"


def username_problem(username: str) -> str | None:
    """Why `username` cannot name a staff member, or None."""
    if not username:
        return "Enter a username."
    if has_control_characters(username):
        return "The username contains control characters."
    if len(username) > 50:
        return "The username is longer than 50 characters."
    if not USERNAME_RE.fullmatch(username):
        return "Use 3 to 50 lowercase letters, digits, dots, dashes or underscores."
    return None


def password_problem(password: str) -> str | None:
    """Why `password` is not acceptable as a new password, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    if has_control_characters(password):
        return "The password contains control characters."
    return None


def role_problem(role: str) -> str | None:
    return None if role in ROLES else f"The role must be one of: {', '.join(ROLES)}."


def public_fields(member: StaffMember) -> dict[str, Any]:
    """What the audit log records of a staff row (never the password hash)."""
    return {"username": member.username, "role": member.role, "is_active": member.is_active}


async def get(conn: asyncpg.Connection, staff_id: int) -> StaffMember | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM staff WHERE id = $1", staff_id)
    return StaffMember.from_record(row) if row else None


async def get_for_session(
    conn: asyncpg.Connection, staff_id: int, session_id: str | None
) -> StaffMember | None:
    """The member behind a session, or None when the session was revoked (one round trip)."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM staff WHERE id = $1"
        " AND NOT EXISTS (SELECT 1 FROM revoked_sessions WHERE id = $2)",
        staff_id,
        session_id,
    )
    return StaffMember.from_record(row) if row else None


async def get_for_login(conn: asyncpg.Connection, username: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS}, password_hash FROM staff WHERE username = $1", username
    )


async def password_hash(conn: asyncpg.Connection, staff_id: int) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT password_hash FROM staff WHERE id = $1", staff_id
    )
    return value


async def list_all(conn: asyncpg.Connection) -> list[StaffListing]:
    rows = await conn.fetch(
        "SELECT id, username, role, is_active, created_at, last_login_at FROM staff"
        " ORDER BY is_active DESC, username"
    )
    return [StaffListing(**dict(row)) for row in rows]


async def count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM staff"))


async def create(conn: asyncpg.Connection, username: str, password: str, role: str) -> StaffMember:
    """Insert a member; raises asyncpg.UniqueViolationError when the username is taken."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    row = await conn.fetchrow(
        f"INSERT INTO staff (username, password_hash, role) VALUES ($1, $2, $3)"
        f" RETURNING {_COLUMNS}",
        username,
        await hash_password_async(password),
        role,
    )
    return StaffMember.from_record(row)


async def record_login(conn: asyncpg.Connection, staff_id: int, new_hash: str | None) -> None:
    """Stamp last_login_at; store a rehashed password when the argon2 parameters changed."""
    await conn.execute(
        "UPDATE staff SET last_login_at = now(),"
        " password_hash = coalesce($2, password_hash) WHERE id = $1",
        staff_id,
        new_hash,
    )


async def _lock_for_change(
    conn: asyncpg.Connection, staff_id: int
) -> tuple[StaffMember, list[int]]:
    """Lock every active admin row, then the target row; returns (target, active admin ids).

    Every change that may remove an admin takes the admin rows first, in id order, so two
    concurrent demotions queue behind each other, and the second one re-reads the admins
    after the first committed (READ COMMITTED re-checks locked rows) and sees it is the last.
    Must run inside a transaction.
    """
    admins = await conn.fetch(
        "SELECT id FROM staff WHERE role = 'admin' AND is_active ORDER BY id FOR UPDATE"
    )
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM staff WHERE id = $1 FOR UPDATE", staff_id)
    if row is None:
        raise StaffNotFound(staff_id)
    return StaffMember.from_record(row), [admin["id"] for admin in admins]


def _check_admin_remains(target: StaffMember, active_admins: list[int]) -> None:
    if target.id in active_admins and len(active_admins) == 1:
        raise LastActiveAdmin(target.username)


async def set_active(
    conn: asyncpg.Connection, staff_id: int, active: bool
) -> tuple[StaffMember, StaffMember]:
    """Deactivate or reactivate; returns (before, after). Deactivating ends their sessions."""
    before, admins = await _lock_for_change(conn, staff_id)
    if not active:
        _check_admin_remains(before, admins)
    row = await conn.fetchrow(
        "UPDATE staff SET is_active = $2,"
        " session_version = session_version + (CASE WHEN is_active AND NOT $2 THEN 1 ELSE 0 END)"
        f" WHERE id = $1 RETURNING {_COLUMNS}",
        staff_id,
        active,
    )
    return before, StaffMember.from_record(row)


async def set_role(
    conn: asyncpg.Connection, staff_id: int, role: str
) -> tuple[StaffMember, StaffMember]:
    """Change the role; returns (before, after). Takes effect on the member's next request."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    before, admins = await _lock_for_change(conn, staff_id)
    if role != "admin":
        _check_admin_remains(before, admins)
    row = await conn.fetchrow(
        f"UPDATE staff SET role = $2 WHERE id = $1 RETURNING {_COLUMNS}", staff_id, role
    )
    return before, StaffMember.from_record(row)


async def set_password(
    conn: asyncpg.Connection, staff_id: int, new_hash: str
) -> tuple[StaffMember, StaffMember]:
    """Store a new hash and end every session of the member; returns (before, after)."""
    before_row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM staff WHERE id = $1 FOR UPDATE", staff_id
    )
    if before_row is None:
        raise StaffNotFound(staff_id)
    row = await conn.fetchrow(
        "UPDATE staff SET password_hash = $2, session_version = session_version + 1"
        f" WHERE id = $1 RETURNING {_COLUMNS}",
        staff_id,
        new_hash,
    )
    return StaffMember.from_record(before_row), StaffMember.from_record(row)


async def set_time_zone(
    conn: asyncpg.Connection, staff_id: int, time_zone: str
) -> tuple[StaffMember, StaffMember]:
    """Store the zone the member reads times in; returns (before, after). The name is not
    checked here: see timefmt.zone_problem."""
    before_row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM staff WHERE id = $1 FOR UPDATE", staff_id
    )
    if before_row is None:
        raise StaffNotFound(staff_id)
    row = await conn.fetchrow(
        f"UPDATE staff SET time_zone = $2 WHERE id = $1 RETURNING {_COLUMNS}", staff_id, time_zone
    )
    return StaffMember.from_record(before_row), StaffMember.from_record(row)


async def end_sessions(conn: asyncpg.Connection, staff_id: int) -> int:
    """Bump session_version so every outstanding cookie of the member stops working."""
    version: int = await conn.fetchval(
        "UPDATE staff SET session_version = session_version + 1 WHERE id = $1"
        " RETURNING session_version",
        staff_id,
    )
    return version
