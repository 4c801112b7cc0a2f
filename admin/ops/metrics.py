"""Prometheus metrics of this process, served at /metrics in the text exposition format.

One registry per process (what Prometheus scrapes is a process); gauges that describe a
running app (its pool, its live hub) are read when scraped from the apps registered here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# a `_created` twin of every counter doubles the scrape for a value nobody graphs
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)

# seconds; a page takes a few ms, an export or import minutes
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "admin_http_requests_total",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "admin_http_request_duration_seconds",
    "Time from request start to the end of the response body, by route template",
    ["route"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
POOL_WAITING = Gauge(
    "admin_db_pool_waiting", "Requests waiting for a pooled connection", registry=REGISTRY
)
POOL_ACQUIRE_TIMEOUTS = Counter(
    "admin_db_pool_acquire_timeouts_total",
    "Acquires that gave up after POOL_ACQUIRE_TIMEOUT (answered 503)",
    registry=REGISTRY,
)
REPLICA_READS = Counter(
    "admin_db_reads_total",
    "Read-only work by where it ran: replica, or primary and why",
    ["target"],
    registry=REGISTRY,
)
EVENT_LAG_SECONDS = Histogram(
    "admin_sse_event_lag_seconds",
    "From the notification of a commit to the event being handed to the streams",
    buckets=_LAG_BUCKETS,
    registry=REGISTRY,
)
LISTENER_RECONNECTS = Counter(
    "admin_listener_reconnects_total",
    "Times the LISTEN connection was lost and opened again",
    registry=REGISTRY,
)
CSV_TRANSFERS = Counter(
    "admin_csv_transfers_total",
    "CSV imports and exports by table and outcome",
    ["kind", "table", "outcome"],
    registry=REGISTRY,
)
CSV_ROWS = Counter(
    "admin_csv_rows_total",
    "Rows imported or exported",
    ["kind", "table"],
    registry=REGISTRY,
)
CSV_BYTES = Counter(
    "admin_csv_bytes_total",
    "Bytes of CSV received by imports or sent by exports",
    ["kind", "table"],
    registry=REGISTRY,
)
CSV_PATHS = Counter(
    "admin_csv_paths_total",
    "How CSV transfers ran: imports copied straight into their table (direct) or staged, "
    "direct imports given up on a slow upload (direct_gave_up), exports produced serially "
    "or in two halves at once",
    ["kind", "table", "path"],
    registry=REGISTRY,
)
CSV_RULE_CHECKS = Counter(
    "admin_csv_rule_checks_total",
    "Value rules of direct imports: checked on a spare connection beside the COPY (beside; "
    "beside_refused when a row broke one, or the check failed) or, with no connection to "
    "spare, in the COPY's own WHERE (in_copy)",
    ["table", "where"],
    registry=REGISTRY,
)
LOGIN_FAILURES = Counter(
    "admin_login_failures_total", "Wrong usernames or passwords", registry=REGISTRY
)
LOGIN_THROTTLED = Counter(
    "admin_login_throttled_total",
    "Login attempts refused with 429 before the password was checked",
    registry=REGISTRY,
)

# name -> (help, read): called at scrape time, summed over the running apps
GaugeSource = Callable[[], dict[str, float]]
_sources: dict[int, GaugeSource] = {}
_GAUGE_HELP = {
    "admin_db_pool_size": "Connections the pool holds open",
    "admin_db_pool_in_use": "Pooled connections lent out",
    "admin_db_pool_max": "POOL_MAX_SIZE",
    "admin_sse_clients": "Open live event streams",
    "admin_db_replica_usable": "1 when reads go to the replica, 0 when it is skipped",
    "admin_db_replica_lag_seconds": "How far the replica's replay is behind the primary",
}


class _AppGauges(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        totals: dict[str, float] = {}
        for read in list(_sources.values()):
            for name, value in read().items():
                totals[name] = totals.get(name, 0.0) + value
        for name, value in totals.items():
            family = GaugeMetricFamily(name, _GAUGE_HELP.get(name, name))
            family.add_metric([], value)
            yield family


REGISTRY.register(_AppGauges())


def add_source(key: int, read: GaugeSource) -> None:
    """Report `read()`'s gauges while the app that owns `key` runs."""
    _sources[key] = read


def remove_source(key: int) -> None:
    _sources.pop(key, None)
