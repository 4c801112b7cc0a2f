"""The staff table: panel accounts and their roles."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import asyncpg

from admin.passwords import hash_password

ROLES = ("staff", "admin")
USERNAME_RE = re.compile(r"[a-z0-9._-]{3,50}")
MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class StaffMember:
    id: int
    username: str
    role: str
    is_active: bool
    session_version: int

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
        )


_COLUMNS = "id, username, role, is_active, session_version"


async def get(conn: asyncpg.Connection, staff_id: int) -> StaffMember | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM staff WHERE id = $1", staff_id)
    return StaffMember.from_record(row) if row else None


async def get_for_login(conn: asyncpg.Connection, username: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS}, password_hash FROM staff WHERE username = $1", username
    )


async def create(conn: asyncpg.Connection, username: str, password: str, role: str) -> StaffMember:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    row = await conn.fetchrow(
        f"INSERT INTO staff (username, password_hash, role) VALUES ($1, $2, $3)"
        f" RETURNING {_COLUMNS}",
        username,
        hash_password(password),
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


async def count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM staff"))


def public_fields(member: StaffMember) -> dict[str, Any]:
    """What the audit log records of a staff row (never the password hash)."""
    return {"username": member.username, "role": member.role, "is_active": member.is_active}
