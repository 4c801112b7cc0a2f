"""Login throttling, stored in the login_attempts table so it holds across workers and hosts.

Rules:
- A username is refused after MAX_FAILURES failed logins within WINDOW, counting only the
  failures since that username's last successful login (a success clears its own count).
- An IP is refused after MAX_FAILURES failed logins within WINDOW, whatever usernames they
  named; a success from that IP clears nothing, so one valid account cannot launder the
  failures made against others.
- An attempt is written (as failed) before its password is verified, under advisory locks
  on its username and IP, so concurrent attempts cannot all slip under the limit; a
  verified attempt is then flipped to succeeded.
- A refused attempt is not written: it was never verified, and Retry-After stays exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
# Rows older than this serve no window; pruned now and then by the login path.
KEEP = timedelta(days=1)

# Advisory lock namespaces (first key of the two-int form); usernames before IPs, always.
_LOCK_USERNAME = 0x6C6F6731  # "log1"
_LOCK_IP = 0x6C6F6732  # "log2"


@dataclass(frozen=True)
class Refusal:
    """Why a login is refused before its password is looked at, and for how long."""

    reason: str  # "username" or "ip"
    retry_after: int  # seconds


_COUNT_SQL = """
WITH username_failures AS (
    SELECT at FROM login_attempts
    WHERE username = $1 AND NOT succeeded AND at > now() - $3::interval
      AND at > coalesce(
          (SELECT max(at) FROM login_attempts WHERE username = $1 AND succeeded), '-infinity')
    ORDER BY at DESC
    LIMIT $4
), ip_failures AS (
    SELECT at FROM login_attempts
    WHERE ip = $2 AND NOT succeeded AND at > now() - $3::interval
    ORDER BY at DESC
    LIMIT $4
)
SELECT
    (SELECT count(*) FROM username_failures) AS username_count,
    (SELECT extract(epoch FROM min(at) + $3::interval - now()) FROM username_failures)
        AS username_wait,
    (SELECT count(*) FROM ip_failures) AS ip_count,
    (SELECT extract(epoch FROM min(at) + $3::interval - now()) FROM ip_failures) AS ip_wait
"""


async def begin_attempt(conn: asyncpg.Connection, username: str, ip: str) -> Refusal | int:
    """A Refusal when the username or IP is over the limit, else the id of a new attempt.

    Retry-After is the time until the oldest of the newest MAX_FAILURES failures leaves
    the window, which is when the count drops below the limit again.
    """
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2)),"
            " pg_advisory_xact_lock($3, hashtext($4))",
            _LOCK_USERNAME,
            username,
            _LOCK_IP,
            ip,
        )
        row = await conn.fetchrow(_COUNT_SQL, username, ip, WINDOW, MAX_FAILURES)
        for reason in ("username", "ip"):
            if row[f"{reason}_count"] >= MAX_FAILURES:
                wait = float(row[f"{reason}_wait"] or 0)
                return Refusal(reason=reason, retry_after=max(1, math.ceil(wait)))
        attempt_id: int = await conn.fetchval(
            "INSERT INTO login_attempts (username, ip, succeeded) VALUES ($1, $2, false)"
            " RETURNING id",
            username,
            ip,
        )
    return attempt_id


async def mark_succeeded(conn: asyncpg.Connection, attempt_id: int) -> None:
    await conn.execute("UPDATE login_attempts SET succeeded = true WHERE id = $1", attempt_id)


async def prune(conn: asyncpg.Connection) -> int:
    """Delete attempts older than any window needs; returns how many went."""
    status = await conn.execute("DELETE FROM login_attempts WHERE at < now() - $1::interval", KEEP)
    return int(status.split()[-1])
