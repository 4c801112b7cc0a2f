"""Login throttling by backoff: guessing gets slower and slower, but nobody is locked out.

Stored in the login_attempts table, so it holds across workers and hosts. An attempt is
judged by one of two sets of rules:

- From a known device (the browser holds a valid device cookie for the username typed, set
  by an earlier successful login, see admin/staff/devices.py): only that device's own failures
  count. After DEVICE_FREE_FAILURES of them, each further attempt must wait
  BACKOFF_BASE_S * 2 ** (failures - DEVICE_FREE_FAILURES) seconds after the last one,
  at most BACKOFF_MAX_S. Nothing done from anywhere else delays it, so however hard an
  account is attacked, its owner logs in from their usual browser at once.
- From anywhere else, every limit below applies and the longest wait wins:
  - per (username, IP): the same backoff after PAIR_FREE_FAILURES failures since that
    pair's last success, so an attacker hammering from one address slows only themselves;
  - per username across all IPs, against distributed guessing: the same backoff after
    USERNAME_FREE_FAILURES failures (a success does not clear these: the owner does not
    need it to, coming from a known device);
  - per IP across all usernames: refused after IP_MAX_FAILURES failures within IP_WINDOW,
    a ceiling high enough that an office behind one NAT or a proxy without forwarded
    headers is not locked out by a few typos.
  Failures older than BACKOFF_WINDOW are forgotten. A fresh device therefore waits at most
  BACKOFF_MAX_S, never a fixed lock.

An attempt is written (as failed) before its password is verified, under advisory locks on
its username and IP, so concurrent attempts cannot all slip under a limit; a verified
attempt is then flipped to succeeded. A refused attempt is not written: it was never
verified, and it must not extend the wait it was refused by.

What was typed as the username is never stored: people type passwords into that field.
The `username` column holds `subject()`, a keyed hash of it, which counts the same.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from admin import db

BACKOFF_BASE_S = 1
BACKOFF_MAX_S = 300
BACKOFF_WINDOW = timedelta(hours=1)
PAIR_FREE_FAILURES = 3
USERNAME_FREE_FAILURES = 10
DEVICE_FREE_FAILURES = 3
IP_MAX_FAILURES = 100
IP_WINDOW = timedelta(minutes=15)
# Beyond this many failures the backoff is at its cap already: no need to count further.
_BACKOFF_COUNT_LIMIT = 32
# Rows older than this serve no window; pruned now and then by the login path.
KEEP = timedelta(days=1)

# Advisory lock namespaces (first key of the two-int form); usernames before IPs, always.
_LOCK_USERNAME = 0x6C6F6731  # "log1"
_LOCK_IP = 0x6C6F6732  # "log2"


def subject(secret_key: str, username: str) -> str:
    """What login_attempts records for a typed username (see the module docstring)."""
    digest = hmac.new(secret_key.encode(), username.encode(), hashlib.sha256).hexdigest()
    return digest[:32]


@dataclass(frozen=True)
class Refusal:
    """Why a login is refused before its password is looked at, and for how long."""

    reason: str  # "device", "pair", "username" or "ip"
    retry_after: int  # seconds


def backoff_seconds(failures: int, free: int) -> float:
    """How long after the last failure the next attempt must wait."""
    if failures < free:
        return 0.0
    return float(min(BACKOFF_BASE_S * 2 ** (failures - free), BACKOFF_MAX_S))


def _backoff_wait(failures: int, free: int, last_age: float | None) -> float:
    if last_age is None:
        return 0.0
    return backoff_seconds(failures, free) - max(0.0, last_age)


_DEVICE_SQL = """
WITH failures AS (
    SELECT at FROM login_attempts
    WHERE username = $1 AND device = $2 AND NOT succeeded AND at > now() - $3::interval
    ORDER BY at DESC
    LIMIT $4
)
SELECT count(*) AS failures, extract(epoch FROM now() - max(at))::float8 AS last_age
FROM failures
"""

_ANONYMOUS_SQL = """
WITH pair_failures AS (
    SELECT at FROM login_attempts
    WHERE username = $1 AND ip = $2 AND device IS NULL AND NOT succeeded
      AND at > now() - $3::interval
      AND at > coalesce(
          (SELECT max(at) FROM login_attempts WHERE username = $1 AND ip = $2 AND succeeded),
          '-infinity')
    ORDER BY at DESC
    LIMIT $4
), username_failures AS (
    SELECT at FROM login_attempts
    WHERE username = $1 AND device IS NULL AND NOT succeeded AND at > now() - $3::interval
    ORDER BY at DESC
    LIMIT $4
), ip_failures AS (
    SELECT at FROM login_attempts
    WHERE ip = $2 AND device IS NULL AND NOT succeeded AND at > now() - $5::interval
    ORDER BY at DESC
    LIMIT $6
)
SELECT
    (SELECT count(*) FROM pair_failures) AS pair_failures,
    (SELECT extract(epoch FROM now() - max(at))::float8 FROM pair_failures) AS pair_age,
    (SELECT count(*) FROM username_failures) AS username_failures,
    (SELECT extract(epoch FROM now() - max(at))::float8 FROM username_failures) AS username_age,
    (SELECT count(*) FROM ip_failures) AS ip_failures,
    (SELECT extract(epoch FROM min(at) + $5::interval - now())::float8 FROM ip_failures)
        AS ip_wait
"""


async def _device_waits(conn: asyncpg.Connection, username: str, device: str) -> dict[str, float]:
    row = await conn.fetchrow(_DEVICE_SQL, username, device, BACKOFF_WINDOW, _BACKOFF_COUNT_LIMIT)
    return {"device": _backoff_wait(row["failures"], DEVICE_FREE_FAILURES, row["last_age"])}


async def _anonymous_waits(conn: asyncpg.Connection, username: str, ip: str) -> dict[str, float]:
    row = await conn.fetchrow(
        _ANONYMOUS_SQL,
        username,
        ip,
        BACKOFF_WINDOW,
        _BACKOFF_COUNT_LIMIT,
        IP_WINDOW,
        IP_MAX_FAILURES,
    )
    at_ceiling = row["ip_failures"] >= IP_MAX_FAILURES
    return {
        "pair": _backoff_wait(row["pair_failures"], PAIR_FREE_FAILURES, row["pair_age"]),
        "username": _backoff_wait(
            row["username_failures"], USERNAME_FREE_FAILURES, row["username_age"]
        ),
        # at the ceiling, the wait runs until the oldest counted failure leaves the window
        "ip": max(float(row["ip_wait"] or 0), 1.0) if at_ceiling else 0.0,
    }


async def begin_attempt(
    conn: asyncpg.Connection, username: str, ip: str, device: str | None = None
) -> Refusal | int:
    """A Refusal while any limit that applies still runs, else the id of a new attempt.

    `username` is the typed username's `subject()`; `device` is the id from a valid device
    cookie naming that username, or None.
    """
    async with conn.transaction():
        # every attempt is counted: a burst of them queues here (each holds the locks for
        # a few statements) rather than answering 503
        await db.wait_for_locks(conn)
        if device is None:
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2)),"
                " pg_advisory_xact_lock($3, hashtext($4))",
                _LOCK_USERNAME,
                username,
                _LOCK_IP,
                ip,
            )
            waits = await _anonymous_waits(conn, username, ip)
        else:
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_USERNAME, username
            )
            waits = await _device_waits(conn, username, device)
        reason, wait = max(waits.items(), key=lambda item: item[1])
        if wait > 0:
            return Refusal(reason=reason, retry_after=max(1, math.ceil(wait)))
        attempt_id: int = await conn.fetchval(
            "INSERT INTO login_attempts (username, ip, device, succeeded)"
            " VALUES ($1, $2, $3, false) RETURNING id",
            username,
            ip,
            device,
        )
    return attempt_id


async def mark_succeeded(conn: asyncpg.Connection, attempt_id: int) -> None:
    await conn.execute("UPDATE login_attempts SET succeeded = true WHERE id = $1", attempt_id)


async def prune(conn: asyncpg.Connection) -> int:
    """Delete attempts older than any window needs; returns how many went."""
    status = await conn.execute("DELETE FROM login_attempts WHERE at < now() - $1::interval", KEEP)
    return int(status.split()[-1])
