"""All configuration, read once from the environment and validated."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from admin.display import money, timefmt


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message is one line for the operator."""


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    listen_database_url: str | None
    data_dir: Path
    secret_key: str = field(repr=False)
    pool_min_size: int = 2
    pool_max_size: int = 10
    pool_acquire_timeout: float = 5.0
    max_upload_mb: int = 1024
    host: str = "127.0.0.1"
    port: int = 8000
    session_idle_hours: float = 8.0
    secure_cookies: bool = False
    statement_timeout_ms: int = 30_000
    # how long a pooled connection's statement waits for a lock (a table under ALTER, a row
    # a long transaction holds) before the request answers 503: waiting readers must not
    # take the whole pool. Imports and migrations wait on (see db.wait_for_locks).
    lock_timeout_ms: int = 3_000
    # request bodies: forms are small and read whole; anonymous bodies get the smallest limit
    max_form_kb: int = 1024
    max_anonymous_form_kb: int = 16
    body_timeout_s: float = 60.0
    body_min_bytes_per_s: int = 1024
    # a CSV import as a whole (receiving, checking, writing)
    import_timeout_s: float = 3600.0
    # a key-ordered export of a table at least this big is produced in two halves at once
    export_split_min_mb: int = 64
    session_max_hours: float = 24.0
    # live event streams
    sse_max_per_session: int = 8
    sse_max_per_process: int = 2000
    sse_replay_max_events: int = 10_000
    sse_replay_max_hours: float = 24.0
    shutdown_grace_s: float = 10.0
    # the schemas whose tables get an admin, and how often a running panel looks for changes
    admin_schemas: tuple[str, ...] = ("public",)
    catalog_check_s: float = 5.0
    staff_cache_s: float = 2.0
    # production topology: a transaction-pooling proxy, a read replica, metrics, logs
    database_pooler: bool = False
    replica_database_url: str | None = None
    replica_max_lag_s: float = 10.0
    metrics_token: str | None = field(default=None, repr=False)
    metrics_address: tuple[str, int] | None = None
    log_json: bool = False
    currency: str = "USD"
    # where the dashboard's "today" starts at midnight; None: the database server's TimeZone
    shop_time_zone: str | None = None

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def max_form_bytes(self) -> int:
        return self.max_form_kb * 1024

    @property
    def max_anonymous_form_bytes(self) -> int:
        return self.max_anonymous_form_kb * 1024

    def with_database(self, url: str) -> Settings:
        """The same settings pointed at a concrete server (used once the embedded one runs)."""
        return replace(self, database_url=url, listen_database_url=self.listen_database_url or url)


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not value > minimum:
        raise SettingsError(f"{name} must be greater than {minimum}, got {raw}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _database_url(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise SettingsError(
            f"{name} must be a postgresql:// URL (postgresql://user:password@host:5432/dbname)"
        )
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise SettingsError(f"{name} has a malformed port: {raw.split('@')[-1]!r}") from None
    if not parts.path.strip("/") and "host=" not in parts.query and not parts.hostname:
        raise SettingsError(f"{name} names neither a host nor a database: {raw!r}")
    return raw


def _schemas(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name, "").strip()
    if not raw:
        return ("public",)
    schemas = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not schemas or any(len(s) > 63 or "\x00" in s for s in schemas):
        raise SettingsError(f"{name} must be a comma-separated list of schema names, got {raw!r}")
    return schemas


def _pooler(env: Mapping[str, str], database_url: str | None, listen_url: str | None) -> bool:
    """Whether DATABASE_URL goes through a transaction-pooling proxy (PgBouncer).

    `auto` reads the deployment: a LISTEN_DATABASE_URL different from DATABASE_URL exists
    only because DATABASE_URL cannot hold a session, i.e. it is a pooler.
    """
    raw = env.get("DATABASE_POOLER", "").strip().lower() or "auto"
    if raw == "auto":
        return database_url is not None and listen_url is not None and listen_url != database_url
    if raw in {"transaction", "pgbouncer"}:
        return True
    if raw == "none":
        return False
    raise SettingsError(f"DATABASE_POOLER must be auto, transaction or none, got {raw!r}")


def _address(env: Mapping[str, str], name: str) -> tuple[str, int] | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise SettingsError(f"{name} must be host:port (127.0.0.1:9100), got {raw!r}")
    return host.strip("[]"), int(port)


def _log_json(env: Mapping[str, str], is_terminal: bool) -> bool:
    raw = env.get("LOG_FORMAT", "").strip().lower() or "auto"
    if raw == "auto":
        return not is_terminal
    if raw in {"json", "text"}:
        return raw == "json"
    raise SettingsError(f"LOG_FORMAT must be auto, json or text, got {raw!r}")


def embedded_secret_key(data_dir: Path) -> str:
    """The embedded mode's signing key: generated once, kept in the data dir (mode 600)."""
    path = data_dir / "secret_key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def load_settings(
    env: Mapping[str, str] | None = None, *, is_terminal: bool | None = None
) -> Settings:
    """Read and validate every variable; raise SettingsError with a one-line reason."""
    env = os.environ if env is None else env
    if is_terminal is None:
        is_terminal = sys.stderr.isatty()
    database_url = _database_url(env, "DATABASE_URL")
    listen_url = _database_url(env, "LISTEN_DATABASE_URL") or database_url
    data_dir = Path(env.get("ADMIN_DATA_DIR", "").strip() or "./.data").expanduser().resolve()

    secret_key = env.get("SECRET_KEY", "").strip()
    if secret_key and len(secret_key) < 16:
        raise SettingsError("SECRET_KEY is too short: use at least 16 random characters")
    if not secret_key:
        if database_url is not None:
            raise SettingsError(
                "SECRET_KEY is required when DATABASE_URL is set "
                '(generate one: python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        secret_key = embedded_secret_key(data_dir)

    pool_min = _int(env, "POOL_MIN_SIZE", 2, minimum=0)
    pool_max = _int(env, "POOL_MAX_SIZE", 10, minimum=1)
    if pool_min > pool_max:
        raise SettingsError(f"POOL_MIN_SIZE ({pool_min}) exceeds POOL_MAX_SIZE ({pool_max})")
    port = _int(env, "PORT", 8000, minimum=0)
    if port > 65535:
        raise SettingsError(f"PORT must be at most 65535, got {port}")

    return Settings(
        database_url=database_url,
        listen_database_url=listen_url,
        data_dir=data_dir,
        secret_key=secret_key,
        pool_min_size=pool_min,
        pool_max_size=pool_max,
        pool_acquire_timeout=_float(env, "POOL_ACQUIRE_TIMEOUT", 5.0),
        max_upload_mb=_int(env, "MAX_UPLOAD_MB", 1024, minimum=1),
        host=env.get("HOST", "").strip() or "127.0.0.1",
        port=port,
        session_idle_hours=_float(env, "SESSION_IDLE_HOURS", 8.0),
        secure_cookies=_bool(env, "SECURE_COOKIES", False),
        statement_timeout_ms=_int(env, "STATEMENT_TIMEOUT_MS", 30_000, minimum=0),
        lock_timeout_ms=_int(env, "LOCK_TIMEOUT_MS", 3_000, minimum=0),
        max_form_kb=_int(env, "MAX_FORM_KB", 1024, minimum=1),
        max_anonymous_form_kb=_int(env, "MAX_ANONYMOUS_FORM_KB", 16, minimum=1),
        body_timeout_s=_float(env, "BODY_TIMEOUT_S", 60.0),
        body_min_bytes_per_s=_int(env, "BODY_MIN_BYTES_PER_S", 1024, minimum=0),
        import_timeout_s=_float(env, "IMPORT_TIMEOUT_S", 3600.0),
        export_split_min_mb=_int(env, "EXPORT_SPLIT_MIN_MB", 64, minimum=0),
        session_max_hours=_float(env, "SESSION_MAX_HOURS", 24.0),
        sse_max_per_session=_int(env, "SSE_MAX_PER_SESSION", 8, minimum=1),
        sse_max_per_process=_int(env, "SSE_MAX_PER_PROCESS", 2000, minimum=1),
        sse_replay_max_events=_int(env, "SSE_REPLAY_MAX_EVENTS", 10_000, minimum=1),
        sse_replay_max_hours=_float(env, "SSE_REPLAY_MAX_HOURS", 24.0),
        shutdown_grace_s=_float(env, "SHUTDOWN_GRACE_S", 10.0),
        admin_schemas=_schemas(env, "ADMIN_SCHEMAS"),
        catalog_check_s=_float(env, "CATALOG_CHECK_S", 5.0),
        staff_cache_s=_float(env, "STAFF_CACHE_S", 2.0),
        database_pooler=_pooler(env, database_url, listen_url),
        replica_database_url=_database_url(env, "DATABASE_REPLICA_URL"),
        replica_max_lag_s=_float(env, "REPLICA_MAX_LAG_S", 10.0),
        metrics_token=_metrics_token(env),
        metrics_address=_address(env, "METRICS_ADDRESS"),
        log_json=_log_json(env, is_terminal),
        currency=_currency(env),
        shop_time_zone=_shop_time_zone(env),
    )


def _currency(env: Mapping[str, str]) -> str:
    code = env.get("CURRENCY", "").strip()
    if not code:
        return money.from_locale(env)
    if not money.CODE.fullmatch(code):
        raise SettingsError(f"CURRENCY must be an ISO 4217 code such as EUR or USD, got {code!r}")
    return code


def _shop_time_zone(env: Mapping[str, str]) -> str | None:
    name = env.get("SHOP_TIME_ZONE", "").strip()
    if name and name not in timefmt.valid_zones():
        shown = name[: timefmt.MAX_ZONE_LENGTH]
        raise SettingsError(
            f"SHOP_TIME_ZONE must be a tz database zone such as Europe/Berlin, got {shown!r}"
        )
    return name or None


def _metrics_token(env: Mapping[str, str]) -> str | None:
    token = env.get("METRICS_TOKEN", "").strip()
    if token and len(token) < 16:
        raise SettingsError("METRICS_TOKEN is too short: use at least 16 random characters")
    return token or None
