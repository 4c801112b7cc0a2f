"""How far a running import is, for the page that sent it: each phase (received, staged,
checked, written, indexes) with its rows and the time since the import began, and a cancel request.

Kept as small files on the local disk, which every process of the panel shares (a poll or
a cancel may reach another worker than the import), named by the sender and a token the
page chose.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

DIRECTORY = Path(tempfile.gettempdir()) / "admin-csv-progress"
KEEP_SECONDS = 3600
_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,64}")
PHASES = ("received", "checked", "written", "indexes")


def valid_token(token: str | None) -> bool:
    return bool(token) and _TOKEN.fullmatch(token or "") is not None


def _path(owner: int, token: str, suffix: str = ".json") -> Path:
    return DIRECTORY / f"{int(owner)}-{token}{suffix}"


class Progress:
    """The progress file of one import."""

    def __init__(self, owner: int, token: str) -> None:
        self.path = _path(owner, token)
        self.cancel_path = _path(owner, token, ".cancel")
        self.started = time.monotonic()
        self.done: list[dict[str, Any]] = []
        self.finished = False
        DIRECTORY.mkdir(mode=0o700, exist_ok=True)
        self._sweep()
        self._write({"phase": "receiving", "phases": [], "elapsed": 0.0})

    def _sweep(self) -> None:
        cutoff = time.time() - KEEP_SECONDS
        for old in DIRECTORY.iterdir():
            with contextlib.suppress(OSError):
                if old.stat().st_mtime < cutoff:
                    old.unlink()

    def _write(self, state: dict[str, Any]) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, self.path)

    def phase(self, name: str, rows: int | None) -> None:
        elapsed = round(time.monotonic() - self.started, 2)
        self.done.append({"phase": name, "rows": rows, "elapsed": elapsed})
        self._write({"phase": name, "rows": rows, "elapsed": elapsed, "phases": self.done})

    def finish(self, outcome: str) -> None:
        self.finished = True
        elapsed = round(time.monotonic() - self.started, 2)
        self._write({"phase": "finished", "outcome": outcome, "elapsed": elapsed,
                     "phases": self.done})  # fmt: skip
        with contextlib.suppress(OSError):
            self.cancel_path.unlink()

    @property
    def cancelled(self) -> bool:
        return self.cancel_path.exists()


def read(owner: int, token: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads(_path(owner, token).read_text())
    except (OSError, ValueError):
        return None
    return found


def cancel(owner: int, token: str) -> bool:
    """Ask the owner's running import to stop; false when there is none."""
    state = read(owner, token)
    if state is None or state.get("phase") == "finished":
        return False
    _path(owner, token, ".cancel").touch()
    return True
