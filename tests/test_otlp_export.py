"""The service exporting metrics over OTLP (gRPC and HTTP) to an in-test receiver."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from tests.helpers import ORIGINAL_HELP, RUNTIME_SERIES
from tests.otlp_receiver import (
    Received,
    attributes,
    collector_series,
    grpc_receiver,
    http_receiver,
)
from tests.servers import Processes, start_service

RECEIVERS = {"grpc": grpc_receiver, "http/protobuf": http_receiver}


@contextmanager
def exporting(protocol: str, tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[str, Received]]:
    """The service pushing over OTLP `protocol` to a receiver; yields its URL and what arrived."""
    with RECEIVERS[protocol]() as (endpoint, received):
        processes = Processes(tmp_path)
        env = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'memos.db'}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            **env,
        }
        try:
            yield start_service(processes, "service", env), received
        finally:
            processes.stop_all()


@pytest.fixture(params=sorted(RECEIVERS))
def exported(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Received]]:
    """A service exporting metrics every 500 ms over one protocol."""
    env = {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_METRIC_EXPORT_INTERVAL": "500"}
    with exporting(request.param, tmp_path, env) as pushed:
        yield pushed


def send_requests(url: str) -> None:
    with httpx.Client(base_url=url) as client:
        for i in range(3):
            assert client.post("/memos/", json={"title": f"{i}", "content": "c"}).status_code == 201
        client.get("/memos/1")
        client.get("/memos/1")
        client.get("/memos/999")
        client.get("/nowhere")
        assert client.get("/metrics").status_code == 404  # not served on the push path


def counts(received: Received) -> dict[tuple[str, str, str], int]:
    metric = next(
        m for (_, name), m in received.latest_metrics().items() if name == "fastapi_requests"
    )
    return {
        (a["method"], a["endpoint"], a["status_code"]): int(point.as_int or point.as_double)
        for point in metric.sum.data_points
        for a in [attributes(point.attributes)]
    }


EXPECTED_COUNTS = {
    ("POST", "/memos/", "201"): 3,
    ("GET", "/memos/{memo_id}", "200"): 2,
    ("GET", "/memos/{memo_id}", "404"): 1,
    ("GET", "<unmatched>", "404"): 2,  # /nowhere, and /metrics, which this path does not serve
}


def test_request_metrics_arrive_under_the_contract_names(exported: tuple[str, Received]) -> None:
    url, received = exported
    send_requests(url)
    received.wait_for(lambda r: _app_counts(r) == EXPECTED_COUNTS)
    metrics = {name: m for (_, name), m in received.latest_metrics().items()}

    requests = metrics["fastapi_requests"]
    assert requests.unit == ""
    assert requests.sum.is_monotonic
    assert (
        requests.sum.aggregation_temporality
        == AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    )

    duration = metrics["fastapi_request_duration"]
    assert duration.unit == "s"
    assert (
        duration.histogram.aggregation_temporality
        == AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    )
    points = {
        (a["method"], a["endpoint"]): p
        for p in duration.histogram.data_points
        for a in [attributes(p.attributes)]
    }
    assert {k for p in duration.histogram.data_points for k in attributes(p.attributes)} == {
        "method",
        "endpoint",
    }
    get_memo = points[("GET", "/memos/{memo_id}")]
    assert get_memo.count == 3 and sum(get_memo.bucket_counts) == 3 and get_memo.sum > 0
    assert list(get_memo.explicit_bounds)[:3] == [0.005, 0.01, 0.025]

    assert metrics["memo_total"].gauge.data_points[0].as_int == 3
    assert metrics["fastapi_active_connections"].gauge.data_points[0].as_int == 0
    # Bridged from prometheus_client's collectors, under the names it writes for the samples.
    for runtime in (
        "python_gc_collections_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ):
        assert runtime in metrics, runtime
    assert metrics["python_gc_collections_total"].sum.is_monotonic


CONTRACT_PROMETHEUS_NAMES = {
    "fastapi_requests_total",
    "fastapi_request_duration_seconds",
    "memo_total",
    "fastapi_active_connections",
    *RUNTIME_SERIES,
}


def test_the_collectors_translation_gives_the_contract_names(
    exported: tuple[str, Received],
) -> None:
    """What arrives, named as the collector's Prometheus exporter does (otel/metrics/naming.py)."""
    url, received = exported
    send_requests(url)
    received.wait_for(lambda r: _app_counts(r) == EXPECTED_COUNTS)
    by_name = {collector_series(m)[0]: m for m in received.latest_metrics().values()}
    assert set(by_name) == CONTRACT_PROMETHEUS_NAMES
    # The original service's HELP texts, as the OTLP description.
    for name, text in ORIGINAL_HELP.items():
        assert by_name[name].description == text, name


def test_resource_names_the_service_and_its_instance(exported: tuple[str, Received]) -> None:
    url, received = exported
    send_requests(url)
    received.wait_for(lambda r: len(r.metrics) >= 2)
    resources = received.resources()
    assert {r["service.name"] for r in resources} == {"fastapi"}
    assert len({r["service.instance.id"] for r in resources}) == 1


def _app_counts(received: Received) -> dict[tuple[str, str, str], int]:
    """Counts without the readiness probes of /health, however many there were."""
    try:
        return {k: v for k, v in counts(received).items() if k[1] != "/health"}
    except StopIteration:
        return {}


@pytest.fixture(params=sorted(RECEIVERS))
def traced(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Received]]:
    """A service exporting spans over one protocol (metrics stay on /metrics)."""
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_BSP_SCHEDULE_DELAY": "200"}
    with exporting(request.param, tmp_path, env) as pushed:
        yield pushed


def received_spans(received: Received) -> list[tuple[str, Any, dict[str, Any]]]:
    """(scope name, span, attributes) for every span received."""
    return [
        (scope.scope.name, span, attributes(span.attributes))
        for request in received.traces
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]


def test_server_spans_and_their_database_children_arrive(traced: tuple[str, Received]) -> None:
    url, received = traced
    with httpx.Client(base_url=url) as client:
        memo = client.post("/memos/", json={"title": "t", "content": "c"}).json()
        client.get(f"/memos/{memo['id']}", headers={"user-agent": "otlp-test"})

    def served(r: Received) -> bool:
        return any(span.name == "GET /memos/{memo_id}" for _, span, _ in received_spans(r))

    received.wait_for(served)
    spans = received_spans(received)
    [(scope, server, attrs)] = [s for s in spans if s[1].name == "GET /memos/{memo_id}"]
    assert scope == "otel.fastapi"
    assert server.kind == server.SPAN_KIND_SERVER
    assert attrs["http.route"] == "/memos/{memo_id}"
    assert attrs["http.response.status_code"] == 200
    assert attrs["user_agent.original"] == "otlp-test"
    assert server.end_time_unix_nano > server.start_time_unix_nano
    received.wait_for(
        lambda r: any(s.parent_span_id == server.span_id for _, s, _ in received_spans(r))
    )
    children = [s for _, s, _ in received_spans(received) if s.parent_span_id == server.span_id]
    assert all(child.trace_id == server.trace_id for child in children)
    assert any("SELECT" in child.name or "memos" in child.name for child in children)
