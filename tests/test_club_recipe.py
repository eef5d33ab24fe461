"""The club's recipe for adding a metric (tests/club/recipe.py, verbatim), in a
module imported before the app: its series reaches every export path as prometheus_client
writes it.

The oracle is prometheus_client itself: the same recipe on a fresh registry, rendered by its own
`generate_latest`.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from otel.metrics.naming import MetricType, metric_name
from tests.helpers import Scrape
from tests.otlp_receiver import attributes, http_receiver
from tests.servers import Processes, start_prometheus, start_service, wait_for
from tests.test_workers import fresh_connection, worker_pids

APP = "tests.club.app:app"
LABELS = {"label1": "value1", "label2": "value2"}
WORKERS = 3


def recipe_exposition(openmetrics: bool = False) -> list[str]:
    """What prometheus_client writes for the recipe after one `inc()`, `_created` values aside."""
    registry = CollectorRegistry()
    metric = Counter("my_metric_total", "Description", ["label1", "label2"], registry=registry)
    metric.labels(label1="value1", label2="value2").inc()
    text = (openmetrics_latest if openmetrics else generate_latest)(registry).decode()
    return [_without_created_value(line) for line in text.splitlines() if line != "# EOF"]


def _without_created_value(line: str) -> str:
    return line.rsplit(" ", 1)[0] if line.startswith("my_metric_created{") else line


def recipe_lines(body: str) -> list[str]:
    """The recipe's lines of a scrape: its HELP, TYPE and samples."""
    return [
        _without_created_value(line)
        for line in body.splitlines()
        if line.startswith("my_metric") or line.startswith(("# HELP my_metric", "# TYPE my_metric"))
    ]


def _sqlite(tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'memos.db'}"}


def test_on_metrics_as_prometheus_client_writes_it(processes: Processes, tmp_path: Path) -> None:
    url = start_service(processes, "service", _sqlite(tmp_path), app=APP)
    text = httpx.get(f"{url}/metrics").text
    assert recipe_lines(text) == recipe_exposition()
    openmetrics = httpx.get(f"{url}/metrics", headers={"Accept": "application/openmetrics-text"})
    assert recipe_lines(openmetrics.text) == recipe_exposition(openmetrics=True)


def test_on_metrics_summed_over_workers(processes: Processes, tmp_path: Path) -> None:
    url = start_service(processes, "service", _sqlite(tmp_path), app=APP, workers=WORKERS)
    master = processes.running["service"].pid
    wait_for(lambda: len(worker_pids(master)) == WORKERS, 30, f"{WORKERS} workers")
    # A worker process exists before it serves its snapshot: wait until every worker answers.
    wait_for(
        lambda: (
            Scrape(httpx.get(f"{url}/metrics").text).value("my_metric_total", **LABELS) == WORKERS
        ),
        30,
        "every worker's count in a scrape",
    )
    # Every worker imported the recipe's module, so each counted one: whichever worker answers,
    # the scrape shows all of them, under prometheus_client's lines.
    with fresh_connection(url) as client:
        for _ in range(10):
            body = client.get("/metrics").text
            assert Scrape(body).value("my_metric_total", **LABELS) == WORKERS
            summed = "} " + f"{WORKERS}.0"
            expected = [line.replace("} 1.0", summed) for line in recipe_exposition()]
            assert recipe_lines(body) == expected


def test_over_remote_write_into_prometheus(processes: Processes, tmp_path: Path) -> None:
    config = {"global": {"scrape_interval": "15s"}, "scrape_configs": []}
    prometheus = start_prometheus(processes, config, "--web.enable-remote-write-receiver")
    env = {
        **_sqlite(tmp_path),
        "OTEL_METRICS_EXPORTER": "prometheus_remote_write",
        "OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT": f"{prometheus}/api/v1/write",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
    }
    start_service(processes, "service", env, app=APP)
    selector = 'my_metric_total{label1="value1",label2="value2",job="fastapi"}'

    def written() -> list[str]:
        body = httpx.get(f"{prometheus}/api/v1/query", params={"query": selector}).json()
        return [series["value"][1] for series in body["data"]["result"]]

    wait_for(lambda: written() == ["1"], 30, f"{selector} == 1 in Prometheus")


def test_in_the_otlp_payload(processes: Processes, tmp_path: Path) -> None:
    with http_receiver() as (endpoint, received):
        env = {
            **_sqlite(tmp_path),
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
        }
        start_service(processes, "service", env, app=APP)
        received.wait_for(lambda r: any(n == "my_metric_total" for _, n in r.latest_metrics()))
        [metric] = [m for (_, n), m in received.latest_metrics().items() if n == "my_metric_total"]
    assert metric.description == "Description"
    assert metric.sum.is_monotonic
    [point] = metric.sum.data_points
    assert attributes(point.attributes) == LABELS
    assert point.as_double == 1.0
    assert 0 < point.start_time_unix_nano < point.time_unix_nano
    # The collector's Prometheus exporters give it the recipe's name back.
    assert metric_name(metric.name, metric.unit, MetricType.MONOTONIC_COUNTER) == "my_metric_total"
