"""Per-request observation: a request id, Prometheus request metrics, a JSON log line.

The request id is the client's `X-Request-ID` when it looks like one (nginx sends
`$request_id`), else a new one; it is returned in the response's `X-Request-ID` and logged.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from admin.ops import metrics

log = logging.getLogger("admin.request")

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UNMATCHED = "unmatched"


def route_templates(routes: Iterable[BaseRoute]) -> Callable[[Scope], str]:
    """A function naming the route template a handled request matched (bounded label set:
    a path that matched nothing is `unmatched`, never the raw path)."""
    by_endpoint: dict[object, str] = {}
    mounts: list[str] = []
    for item in routes:
        if isinstance(item, Route):
            by_endpoint.setdefault(item.endpoint, item.path)
        elif isinstance(item, Mount):
            mounts.append(item.path)

    def template(scope: Scope) -> str:
        endpoint = scope.get("endpoint")
        if endpoint is not None and endpoint in by_endpoint:
            return by_endpoint[endpoint]
        path: str = scope.get("path", "")
        for prefix in mounts:
            if path.startswith(prefix + "/"):
                return prefix
        return UNMATCHED

    return template


# a generated request id: random per process, then counted (as unique as a uuid4 across
# instances and restarts, without drawing 16 random bytes for every request)
_ID_PREFIX = secrets.token_hex(10)
_ids = itertools.count(1)


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
            break
    return f"{_ID_PREFIX}{next(_ids):012x}"


class ObserveMiddleware:
    """Outermost of the app's middleware: sees every response, errors included."""

    def __init__(self, app: ASGIApp, *, template: Callable[[Scope], str], json_logs: bool) -> None:
        self.app = app
        self.template = template
        # the labelled series, looked up once each rather than per request
        self._counted = functools.lru_cache(maxsize=4096)(
            lambda route, method, status: metrics.REQUESTS.labels(route, method, str(status))
        )
        self._timed = functools.lru_cache(maxsize=1024)(metrics.REQUEST_SECONDS.labels)
        self.json_logs = json_logs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        sent = 0

        async def observed_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            duration = time.perf_counter() - started
            route = self.template(scope)
            self._counted(route, scope["method"], status).inc()
            self._timed(route).observe(duration)
            if self.json_logs:
                _log_line(scope, request_id, route, status, duration, sent)


def _log_line(
    scope: Scope, request_id: str, route: str, status: int, duration: float, sent: int
) -> None:
    staff = scope.get("state", {}).get("staff")
    client = scope.get("client")
    line = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "request_id": request_id,
        "staff_id": getattr(staff, "id", None),
        "method": scope["method"],
        "route": route,
        "path": scope.get("path", ""),
        "status": status,
        "duration_ms": round(duration * 1000, 2),
        "bytes": sent,
        "client": client[0] if client else None,
    }
    if log.isEnabledFor(logging.INFO):
        # made here rather than by log.info(), which looks up the caller's source line on
        # every request for a record that never shows it
        log.handle(log.makeRecord(log.name, logging.INFO, "", 0, json.dumps(line), None, None))


class JsonFormatter(logging.Formatter):
    """Every other log record as one JSON object per line too (request lines are JSON
    already and pass through as they are)."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == log.name:
            return record.getMessage()
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_json_logs() -> None:
    """Send every log record to stderr as JSON lines (uvicorn's access log is then off)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    # the JSON lines name no thread or process: don't collect them for every record
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
