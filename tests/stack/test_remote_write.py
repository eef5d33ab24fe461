"""Remote write into a real Prometheus: the contract's names, exact totals under 4 workers, and
every panel of the FastAPI dashboard answering from the pushed series."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from stack_support import expand, load_dashboards, panel_queries, require_binary

from tests.servers import Processes, start_prometheus, start_service, wait_for
from tests.test_workers import MEMOS, REQUESTS, WORKERS, drive

pytestmark = pytest.mark.e2e

CONTRACT_NAMES = {
    "fastapi_requests_total",
    "fastapi_request_duration_seconds_bucket",
    "fastapi_request_duration_seconds_count",
    "fastapi_request_duration_seconds_sum",
    "memo_total",
    "fastapi_active_connections",
    "python_gc_objects_collected_total",
    "python_gc_collections_total",
    "python_info",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
}


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5).json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    require_binary("prometheus")
    tmp = tmp_path_factory.mktemp("remote-write")
    processes = Processes(tmp)
    try:
        config = {"global": {"scrape_interval": "15s"}, "scrape_configs": []}
        url = start_prometheus(processes, config, "--web.enable-remote-write-receiver")
        env = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'memos.db'}",
            "OTEL_METRICS_EXPORTER": "prometheus_remote_write",
            "OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT": f"{url}/api/v1/write",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        }
        app = start_service(processes, "service", env, workers=WORKERS)
        drive(app)
        yield Prometheus(url)
    finally:
        processes.stop_all()


PAIR = 'endpoint="/memos/{memo_id}",method="GET"'
ROUTE = PAIR + ',status_code="200"'


def test_totals_are_exact_under_four_workers(pushed: Prometheus) -> None:
    wait_for(
        lambda: pushed.value(f"sum(fastapi_requests_total{{{ROUTE}}})") == REQUESTS,
        30,
        f"sum of fastapi_requests_total == {REQUESTS}",
    )
    instances = pushed.query(f"fastapi_requests_total{{{ROUTE}}}")
    assert len({s["metric"]["instance"] for s in instances}) == WORKERS
    assert pushed.value("max(memo_total)") == MEMOS


def test_the_contract_names_and_labels_arrive(pushed: Prometheus) -> None:
    names = set(httpx.get(f"{pushed.url}/api/v1/label/__name__/values").json()["data"])
    assert names >= CONTRACT_NAMES, CONTRACT_NAMES - names
    assert not {n for n in names if n.endswith(("_s", "_total_total"))}
    series = pushed.query("fastapi_requests_total")[0]["metric"]
    assert set(series) == {"__name__", "job", "instance", "method", "endpoint", "status_code"}
    assert series["job"] == "fastapi"
    bucket = pushed.query('fastapi_request_duration_seconds_bucket{le="1.0"}')[0]["metric"]
    assert set(bucket) == {"__name__", "job", "instance", "method", "endpoint", "le"}
    assert pushed.query('fastapi_request_duration_seconds_bucket{le="+Inf"}')


def test_every_fastapi_dashboard_panel_has_data(pushed: Prometheus) -> None:
    wait_for(
        lambda: pushed.value(f"sum(fastapi_requests_total{{{ROUTE}}})") == REQUESTS,
        30,
        "all requests pushed",
    )
    dashboard = load_dashboards()["fastapi-dashboard.json"]
    queries = [q for q in panel_queries() if q.dashboard == "fastapi-dashboard.json"]
    assert queries
    for query in queries:
        promql = expand(query.expr, dashboard)
        wait_for(lambda p=promql: pushed.query(p), 30, f"{query.id} returning data: {promql}")


def test_bucket_counts_are_cumulative(pushed: Prometheus) -> None:
    inf = pushed.value(f'sum(fastapi_request_duration_seconds_bucket{{le="+Inf",{PAIR}}})')
    smallest = pushed.value(f'sum(fastapi_request_duration_seconds_bucket{{le="0.005",{PAIR}}})')
    assert inf is not None and smallest is not None
    assert smallest <= inf == REQUESTS
