"""From a latency bucket to its trace: exemplars through a real Prometheus and over OTLP, and the
request's log lines carrying the same trace id."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from stack_support import require_binary

from tests.otlp_receiver import Received, attributes, http_receiver
from tests.servers import Processes, start_prometheus, start_service, wait_for

pytestmark = pytest.mark.e2e


def span_trace_ids(received: Received) -> set[str]:
    return {
        span.trace_id.hex()
        for request in received.traces
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }


def drive(url: str, count: int = 30) -> None:
    with httpx.Client(base_url=url) as client:
        for i in range(count):
            client.get("/memos/")
            client.get(f"/memos/{i}")


def traced_env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'memos.db'}",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "LOG_FORMAT": "json",
    }


def test_prometheus_stores_exemplars_whose_traces_were_exported(
    processes: Processes, tmp_path: Path
) -> None:
    require_binary("prometheus")
    with http_receiver() as (endpoint, received):
        app = start_service(processes, "service", traced_env(tmp_path, endpoint), access_log=True)
        config = {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [
                {"job_name": "fastapi", "static_configs": [{"targets": [app[len("http://") :]]}]}
            ],
        }
        prometheus = start_prometheus(processes, config, "--enable-feature=exemplar-storage")
        drive(app)
        start = time.time() - 120

        def exemplar_traces() -> set[str]:
            response = httpx.get(
                f"{prometheus}/api/v1/query_exemplars",
                params={
                    "query": "fastapi_request_duration_seconds_bucket",
                    "start": start,
                    "end": time.time() + 60,
                },
            )
            return {
                exemplar["labels"]["trace_id"]
                for series in response.json()["data"]
                for exemplar in series["exemplars"]
            }

        found = wait_for(exemplar_traces, 30, "exemplars in Prometheus")
        received.wait_for(lambda r: found <= span_trace_ids(r))
        assert found <= span_trace_ids(received)

    access = [
        json.loads(line)
        for line in processes.log("service").splitlines()
        if line.startswith("{") and '"uvicorn.access"' in line and "/memos/" in line
    ]
    assert access, processes.log("service")
    assert all("trace_id" in line and "span_id" in line for line in access)
    assert {line["trace_id"] for line in access} <= span_trace_ids(received)


def test_otlp_metrics_carry_exemplars_of_exported_spans(
    processes: Processes, tmp_path: Path
) -> None:
    with http_receiver() as (endpoint, received):
        env = traced_env(tmp_path, endpoint)
        env |= {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_METRIC_EXPORT_INTERVAL": "500"}
        app = start_service(processes, "service", env)
        drive(app, 10)

        def exemplar_traces(r: Received) -> set[str]:
            return {
                exemplar.trace_id.hex()
                for (_, name), metric in r.latest_metrics().items()
                if name == "fastapi_request_duration"
                for point in metric.histogram.data_points
                if attributes(point.attributes)["endpoint"] == "/memos/"
                for exemplar in point.exemplars
            }

        received.wait_for(lambda r: bool(exemplar_traces(r)))
        found = exemplar_traces(received)
        received.wait_for(lambda r: found <= span_trace_ids(r))
