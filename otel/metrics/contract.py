"""The metric contract: one table from OpenTelemetry instruments to the documented Prometheus names.

Every export path reads this table. A spec's ``stream`` is the metric name the SDK exports
(set by a View); Prometheus-style exporters then add ``_total`` to counters and the unit suffix
(``s`` -> ``_seconds``), which gives ``prometheus_name``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "histogram", "gauge"]

# Buckets as floats: integer bounds would print as le="1" instead of le="1.0".
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip

# The `endpoint` value of every request that matched no route.
UNMATCHED_ENDPOINT = "<unmatched>"
# The `method` value of every request whose method is not a standard HTTP method.
OTHER_METHOD = "_OTHER"
STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


@dataclass(frozen=True)
class MetricSpec:
    instrument: str
    kind: Kind
    unit: str
    description: str
    stream: str
    prometheus_name: str
    attributes: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None


REQUESTS = MetricSpec(
    instrument="http.server.requests",
    kind="counter",
    unit="",
    description="Total number of requests",
    stream="fastapi_requests",
    prometheus_name="fastapi_requests_total",
    attributes=("method", "endpoint", "status_code"),
)
REQUEST_DURATION = MetricSpec(
    instrument="http.server.request.duration",
    kind="histogram",
    unit="s",
    description="Request duration in seconds",
    stream="fastapi_request_duration",
    prometheus_name="fastapi_request_duration_seconds",
    attributes=("method", "endpoint"),
    buckets=DURATION_BUCKETS,
)
ACTIVE_CONNECTIONS = MetricSpec(
    instrument="db.client.connections.used",
    kind="gauge",
    unit="",  # not "1": the collector would append _ratio
    description="Number of active database connections",
    stream="fastapi_active_connections",
    prometheus_name="fastapi_active_connections",
)
MEMO_TOTAL = MetricSpec(
    instrument="memo.count",
    kind="gauge",
    unit="",
    description="Total number of memos in the database",
    stream="memo_total",
    prometheus_name="memo_total",
)

CONTRACT: tuple[MetricSpec, ...] = (REQUESTS, REQUEST_DURATION, ACTIVE_CONNECTIONS, MEMO_TOTAL)

# prometheus_client's GC and process families, bridged on every export path
# (otel/metrics/bridge.py); one series of each shows that they arrive.
RUNTIME_SERIES = ("python_gc_objects_collected_total", "process_resident_memory_bytes")


def scraped_series() -> tuple[str, ...]:
    """One sample name per family that a scrape of the app must show: the contract's, then the
    runtime's. A histogram shows as its `_bucket` series."""
    names = [
        spec.prometheus_name + ("_bucket" if spec.kind == "histogram" else "") for spec in CONTRACT
    ]
    return (*names, *RUNTIME_SERIES)
