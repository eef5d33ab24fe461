"""One metric a developer adds gets the same Prometheus name and label keys on every path: our
`/metrics`, remote write into a real Prometheus, and the collector (the upstream rule applied to
the OTLP payload as decoded from the wire)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from otel.export.endpoint import MetricsEndpoint
from otel.export.prometheus_reader import PrometheusReader
from otel.export.remote_write import RemoteWriteExporter
from otel.metrics.aggregator import RequestAggregator
from tests.otlp_receiver import Received, collector_series, http_receiver
from tests.servers import Processes, start_prometheus, wait_for

pytestmark = pytest.mark.e2e

Series = frozenset[tuple[str, frozenset[str]]]
JOB = "naming-paths"
# Keys that collide or need fixing: a leading digit (2fa and 3fa must stay apart), a leading
# underscore, runs of invalid characters, dots and dashes.
KEYS = ("http.route", "2fa", "3fa", "_private", "a__b", "service-name", "x..y")
ATTRIBUTES = {key: f"v{i}" for i, key in enumerate(KEYS)}
# (instrument, name, unit): units the old rule did not know, tokens already in the name,
# annotations, per-units, `total` inside a counter's name.
COUNTERS = (
    ("network.io", "By"),
    ("bytes.sent", "By"),
    ("disk.written", "GiBy"),
    ("http.requests", "{req}/s"),
    ("speed.reports", "m/s"),
    ("queue.wait", "min"),
    ("requests.total.served", ""),
    ("cpu.time", "s"),
)
UP_DOWN_COUNTERS = (("queue.items", "{items}"), ("pool.usage", "KiBy"))
HISTOGRAMS = (("http.server.request.duration", "s"), ("payload.size", "KBy"), ("lag", "ms"))
GAUGES = (("cpu.utilization", "%"), ("temperature", "Cel"), ("cpu.load", "1"))


def record(provider: MeterProvider) -> None:
    meter = provider.get_meter("naming-paths")
    for name, unit in COUNTERS:
        meter.create_counter(name, unit=unit).add(3, ATTRIBUTES)
    for name, unit in UP_DOWN_COUNTERS:
        meter.create_up_down_counter(name, unit=unit).add(-2, ATTRIBUTES)
    for name, unit in HISTOGRAMS:
        meter.create_histogram(name, unit=unit).record(0.3, ATTRIBUTES)

    def observe(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(0.5, ATTRIBUTES)]

    for name, unit in GAUGES:
        meter.create_observable_gauge(name, [observe], unit=unit)
    meter.create_observable_counter("process.cpu.seconds", [observe], unit="s")


def metrics_endpoint_series(registry: CollectorRegistry) -> Series:
    endpoint = MetricsEndpoint(RequestAggregator(), registry)
    body, _ = endpoint.exposition("text/plain")
    found = set()
    for family in text_string_to_metric_families(body.decode()):
        if family.name.startswith("fastapi_"):  # the request metrics, rendered apart
            continue
        for sample in family.samples:
            found.add((sample.name, frozenset(sample.labels)))
    return frozenset(found)


def otlp_series(received: Received) -> Series:
    found = set()
    for metric in received.latest_metrics().values():
        name, keys = collector_series(metric)
        if metric.WhichOneof("data") == "histogram":
            found |= {(f"{name}_bucket", keys | {"le"}), (f"{name}_count", keys)}
            found.add((f"{name}_sum", keys))
        else:
            found.add((name, keys))
    return frozenset(found)


def prometheus_series(url: str) -> Series:
    response = httpx.get(f"{url}/api/v1/series", params={"match[]": f'{{job="{JOB}"}}'})
    found = set()
    for labels in response.json()["data"]:
        keys = frozenset(labels) - {"__name__", "job", "instance"}
        found.add((labels["__name__"], keys))
    return frozenset(found)


@pytest.fixture
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    processes = Processes(tmp_path_factory.mktemp("naming-paths"))
    try:
        yield start_prometheus(
            processes, {"scrape_configs": []}, "--web.enable-remote-write-receiver"
        )
    finally:
        processes.stop_all()


def test_every_path_gives_the_same_names_and_label_keys(prometheus: str) -> None:
    registry = CollectorRegistry(auto_describe=False)
    with http_receiver() as (endpoint, received):
        remote = RemoteWriteExporter(endpoint=f"{prometheus}/api/v1/write", timeout=10)
        otlp = OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics")
        pushers = [
            PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
            for exporter in (remote, otlp)
        ]
        resource = Resource({"service.name": JOB, "service.instance.id": "one"})
        provider = MeterProvider([PrometheusReader(registry), *pushers], resource=resource)
        try:
            record(provider)
            for reader in pushers:
                assert reader.force_flush()
            received.wait_for(lambda r: len(r.latest_metrics()) == 17)
            ours = metrics_endpoint_series(registry)
            collector = otlp_series(received)
            pushed = wait_for(lambda: prometheus_series(prometheus), 10, "remote-written series")
        finally:
            provider.shutdown()

    assert len(ours) == 14 + 3 * 3  # every instrument; a histogram is three series
    assert ours == collector
    assert pushed == collector
    names = {name for name, _ in ours}
    # The cases the old rules got wrong, spelled out.
    assert {"disk_written_gibibytes_total", "speed_reports_meters_per_second_total"} <= names
    assert {"http_requests_per_second_total", "cpu_load_ratio", "bytes_sent_total"} <= names
    assert {"key_2fa", "key_3fa", "key_private", "a_b", "x_y"} <= next(iter(ours))[1]
