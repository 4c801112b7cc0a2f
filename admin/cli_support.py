"""What the CLI commands share: a reachable database for the duration of a command."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from admin import embedded
from admin.settings import Settings


class CommandError(Exception):
    """A failure the operator can fix; printed as one line, exit status 1."""


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[Settings]:
    """Settings with a usable DATABASE_URL; starts (and later releases) the embedded server."""
    if not settings.embedded:
        yield settings
        return
    server = embedded.start(settings.data_dir)
    try:
        yield settings.with_database(server.get_uri())
    finally:
        embedded.stop(server)


class AlreadyServing(RuntimeError):
    pass


@contextlib.contextmanager
def exclusive_serve_lock(data_dir: Path) -> Iterator[None]:
    """Refuse a second `serve` on the same data dir (one would otherwise fight the other)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "serve.lock"
    handle: IO[str] = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise AlreadyServing(
                f"the panel is already being served from {data_dir} (pid {owner}); "
                "stop it first or set ADMIN_DATA_DIR to another directory"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()
