"""Password hashing with argon2id."""

from __future__ import annotations

import asyncio
import base64
import os

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import ARGON2_VERSION

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


def _unmatched_hash(hasher: PasswordHasher) -> str:
    """A hash with `hasher`'s parameters that no password matches. Verifying against it costs
    what verifying a real one costs (the parameters are in the string), and it is made without
    spending a hash: hashing one at import cost every process start 0.6 s of CPU."""

    def random_b64(size: int) -> str:
        return base64.b64encode(os.urandom(size)).decode().rstrip("=")

    kind = {Type.ID: "argon2id", Type.I: "argon2i", Type.D: "argon2d"}[hasher.type]
    return (
        f"${kind}$v={ARGON2_VERSION}"
        f"$m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}"
        f"${random_b64(hasher.salt_len)}${random_b64(hasher.hash_len)}"
    )


# Verified against when the username is unknown, so both cases cost the same time.
_UNMATCHED_HASH = _unmatched_hash(_hasher)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; always spends one argon2 verification."""
    try:
        return (
            _hasher.verify(password_hash or _UNMATCHED_HASH, password) and password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# argon2 spends tens of milliseconds of CPU on purpose (and releases the GIL while it
# does): off the event loop, other requests keep being served meanwhile.
async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify_password, password_hash, password)
