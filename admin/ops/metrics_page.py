"""GET /metrics: Prometheus text format for admins, or for a scraper with METRICS_TOKEN.

A separate bind address (METRICS_ADDRESS) serves the same registry without either, for a
scraper on a private network: nothing on the public port changes.
"""

from __future__ import annotations

import hmac
import logging
import threading

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from admin.access import Access, guard
from admin.ops import metrics
from admin.settings import Settings

log = logging.getLogger("admin.ops.metrics")

_bound: set[tuple[str, int]] = set()
_bound_lock = threading.Lock()


async def _exposition(request: Request) -> Response:
    return Response(
        generate_latest(metrics.REGISTRY),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )


def _bearer_ok(request: Request, settings: Settings) -> bool:
    if settings.metrics_token is None:
        return False
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), settings.metrics_token.encode()
    )


_for_admins = guard(_exposition, Access.ADMIN)


async def metrics_endpoint(request: Request) -> Response:
    """The token opens it without a session; otherwise the admin rule applies as anywhere."""
    if _bearer_ok(request, request.app.state.settings):
        return await _exposition(request)
    return await _for_admins(request)


metrics_endpoint.access = Access.ADMIN  # type: ignore[attr-defined]


def metrics_route() -> Route:
    return Route("/metrics", metrics_endpoint, methods=["GET"], name="metrics")


def serve_separately(settings: Settings) -> None:
    """Serve /metrics on METRICS_ADDRESS too (once per process), with no login or token."""
    if settings.metrics_address is None:
        return
    with _bound_lock:
        if settings.metrics_address in _bound:
            return
        host, port = settings.metrics_address
        try:
            start_http_server(port, addr=host, registry=metrics.REGISTRY)
        except OSError as exc:
            # several workers share one address: the first one serves it
            log.warning("METRICS_ADDRESS %s:%d not served: %s", host, port, exc)
            return
        _bound.add(settings.metrics_address)
