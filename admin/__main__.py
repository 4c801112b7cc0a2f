"""python -m admin serve | migrate | create-staff | demo-data | simulate-orders"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import math
import os
import secrets
import signal
import sys
from dataclasses import dataclass

import asyncpg

from admin import db
from admin.cli_support import AlreadyServing, CommandError, database, exclusive_serve_lock
from admin.migrations import migrate
from admin.settings import Settings, SettingsError, load_settings
from admin.staff import table as staff_table


async def _run_migrations(settings: Settings) -> list[str]:
    conn = await db.connect(settings)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


@dataclass(frozen=True)
class FirstAdmin:
    """The admin created on the first run, and whether its password came from ADMIN_PASSWORD."""

    password: str
    from_environment: bool


async def _ensure_first_admin(settings: Settings) -> FirstAdmin | None:
    """On a database with no staff at all, create `admin`; None when staff exist already."""
    conn = await db.connect(settings)
    try:
        async with conn.transaction():
            await db.wait_for_locks(conn)
            await conn.execute("LOCK TABLE staff IN SHARE ROW EXCLUSIVE MODE")
            if await staff_table.count(conn) > 0:
                return None
            from_environment = os.environ.get("ADMIN_PASSWORD")
            password = from_environment or secrets.token_urlsafe(12)
            await staff_table.create(conn, "admin", password, "admin")
            return FirstAdmin(password=password, from_environment=bool(from_environment))
    finally:
        await conn.close()


def _first_run_message(first: FirstAdmin) -> str:
    if first.from_environment:
        # never echo a password the operator chose: logs and terminals are not secret
        return "First run: created 'admin' with the password from ADMIN_PASSWORD."
    return (
        f"First run: log in as 'admin' with password {first.password}"
        " (shown once; change it under My account)."
    )


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    with database(settings) as ready:
        applied = asyncio.run(_run_migrations(ready))
    print(f"applied: {', '.join(applied)}" if applied else "database is up to date")
    return 0


def _read_new_password() -> str:
    from_env = os.environ.get("ADMIN_PASSWORD")
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise CommandError("no terminal to ask for a password: set ADMIN_PASSWORD")
    first = getpass.getpass("Password: ")
    second = getpass.getpass("Password (again): ")
    if first != second:
        raise CommandError("the two passwords differ")
    return first


def cmd_create_staff(settings: Settings, args: argparse.Namespace) -> int:
    username = args.username.strip().lower()
    if not staff_table.USERNAME_RE.fullmatch(username):
        raise CommandError("username must be 3-50 characters of a-z, 0-9, '.', '_' or '-'")
    password = _read_new_password()
    if len(password) < staff_table.MIN_PASSWORD_LENGTH:
        raise CommandError(
            f"password must be at least {staff_table.MIN_PASSWORD_LENGTH} characters"
        )

    async def create(ready: Settings) -> None:
        await _run_migrations(ready)
        conn = await db.connect(ready)
        try:
            await staff_table.create(conn, username, password, args.role)
        except asyncpg.UniqueViolationError:
            raise CommandError(f"staff member {username!r} already exists") from None
        finally:
            await conn.close()

    with database(settings) as ready:
        asyncio.run(create(ready))
    print(f"created {args.role} {username!r}")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    lock = exclusive_serve_lock(settings.data_dir) if settings.embedded else _no_lock()
    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default handler that
    # would end the process before the embedded server is released. Raising instead unwinds
    # through `database()`, which stops it.
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with lock, database(settings) as ready:
            _serve(ready, args, host, port)
    except _Terminated:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


class _Terminated(Exception):
    pass


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


def _serve(ready: Settings, args: argparse.Namespace, host: str, port: int) -> None:
    import uvicorn

    asyncio.run(_run_migrations(ready))
    first_admin = asyncio.run(_ensure_first_admin(ready))
    # Worker processes read their configuration from the environment.
    os.environ["DATABASE_URL"] = str(ready.database_url)
    os.environ["SECRET_KEY"] = ready.secret_key
    shown_host = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # noqa: S104
    print(f"Admin panel: http://{shown_host}:{port}/", flush=True)
    if first_admin:
        print(_first_run_message(first_admin), flush=True)
    else:
        print(
            "Log in with a staff account"
            " (new one: python -m admin create-staff NAME --role admin).",
            flush=True,
        )
    uvicorn.run(
        "admin.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        log_level=args.log_level,
        proxy_headers=False,
        # JSON logs carry one line per request already
        access_log=not ready.log_json,
        # then running requests (a stalled export, say) are cancelled and the app stops
        timeout_graceful_shutdown=math.ceil(ready.shutdown_grace_s),
    )


class _no_lock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the panel (migrates first)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(handler=cmd_serve)

    mig = commands.add_parser("migrate", help="apply pending migrations")
    mig.set_defaults(handler=cmd_migrate)

    create = commands.add_parser("create-staff", help="create a staff account")
    create.add_argument("username")
    create.add_argument("--role", choices=staff_table.ROLES, default="staff")
    create.set_defaults(handler=cmd_create_staff)

    from admin.demo import commands as demo

    demo.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        return int(args.handler(settings, args))
    except (SettingsError, CommandError, AlreadyServing) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
