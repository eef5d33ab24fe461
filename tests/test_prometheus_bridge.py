"""The Prometheus bridge in one process: one metric of every prometheus_client type on every
export path, the gauge modes across workers, and a name defined on both sides.

Oracles: prometheus_client's own `generate_latest` (the `/metrics` text), the OpenTelemetry
specification's Prometheus-to-OTLP table and the values set here (the OTLP payload, decoded),
a real Prometheus (remote write), and prometheus_client's multiprocess mode (the gauge modes).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import prometheus_client.values
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.parser import text_string_to_metric_families

from otel import Telemetry, TelemetryConfig, TelemetryConfigError, setup_telemetry
from otel.export.gauge_modes import MODES, GaugeModes
from otel.export.workers import kept_after_exit, merge, snapshot_of
from tests.otlp_receiver import Received, attributes, grpc_receiver, http_receiver
from tests.servers import Processes, start_prometheus

OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}
TRACE_ID, SPAN_ID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
EXEMPLAR = {"trace_id": TRACE_ID, "span_id": SPAN_ID}


def club_registry() -> CollectorRegistry:
    """One metric of every type prometheus_client has, each used once."""
    registry = CollectorRegistry()
    logins = Counter("club_logins_total", "Logins", ["provider"], registry=registry)
    logins.labels("github").inc(3)
    Gauge("club_queue_depth", "Jobs waiting", registry=registry).set(4)
    upload = Histogram("club_upload_seconds", "Upload time", ["kind"], registry=registry)
    upload.labels("image").observe(0.3, exemplar=EXEMPLAR)
    size = Summary("club_request_size", "Request size", unit="bytes", registry=registry)
    size.observe(100)
    size.observe(300)
    Info("club_build", "Build", registry=registry).info({"version": "1.2"})
    Enum("club_state", "State", states=["open", "closed"], registry=registry).state("closed")
    return registry


def telemetry_for(registry: CollectorRegistry, env: dict[str, str]) -> tuple[FastAPI, Telemetry]:
    app = FastAPI()
    config = TelemetryConfig.from_env({"OTEL_METRIC_EXPORT_INTERVAL": "3600000", **env})
    return app, setup_telemetry(app, config, registries=[registry])


# --- /metrics ----------------------------------------------------------------------------------


def test_metrics_writes_every_type_as_prometheus_client() -> None:
    registry = club_registry()
    app, telemetry = telemetry_for(registry, {})
    with TestClient(app) as client:
        text = client.get("/metrics").text
        openmetrics = client.get("/metrics", headers=OPENMETRICS).text
    telemetry.shutdown()
    assert generate_latest(registry).decode() in text
    assert openmetrics_latest(registry).decode().removesuffix("# EOF\n") in openmetrics
    assert openmetrics.endswith("# EOF\n") and openmetrics.count("# EOF") == 1


class CountingCollector:
    """A prometheus_client collector that counts how often it is collected."""

    def __init__(self) -> None:
        self.collections = 0

    def collect(self) -> list[GaugeMetricFamily]:
        self.collections += 1
        return [GaugeMetricFamily("club_collections", "Collections", value=self.collections)]


def test_requests_never_collect_bridged_registries() -> None:
    registry = CollectorRegistry(auto_describe=False)
    counting = CountingCollector()
    registry.register(counting)
    app = FastAPI()

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    telemetry = setup_telemetry(app, TelemetryConfig(), registries=[registry])
    with TestClient(app) as client:
        before = counting.collections  # start-up checks the names once
        for _ in range(20):
            assert client.get("/ping").status_code == 200
        assert counting.collections == before
        assert "club_collections " in client.get("/metrics").text
        assert counting.collections == before + 1
    telemetry.shutdown()


# --- OTLP --------------------------------------------------------------------------------------

RECEIVERS = {"grpc": grpc_receiver, "http/protobuf": http_receiver}


@pytest.fixture(params=sorted(RECEIVERS))
def pushed_otlp(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """The club registry pushed once over OTLP; the decoded metrics by name."""
    with RECEIVERS[request.param]() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)  # the SDK reads os.environ
        env = {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": request.param}
        _, telemetry = telemetry_for(club_registry(), env)
        assert telemetry.meter_provider is not None
        telemetry.meter_provider.force_flush()
        received.wait_for(lambda r: "club_request_size_bytes" in _by_name(r))
        telemetry.shutdown()
        yield _by_name(received)


def _by_name(received: Received) -> dict[str, Any]:
    return {name: metric for (_, name), metric in received.latest_metrics().items()}


def _points(metric: Any, kind: str) -> dict[tuple[tuple[str, Any], ...], Any]:
    return {
        tuple(sorted(attributes(p.attributes).items())): p
        for p in getattr(metric, kind).data_points
    }


def _value(point: Any) -> float:
    return float(getattr(point, point.WhichOneof("value")))


def test_otlp_counter_is_a_monotonic_cumulative_sum(pushed_otlp: dict[str, Any]) -> None:
    metric = pushed_otlp["club_logins_total"]
    assert metric.description == "Logins"
    assert metric.sum.is_monotonic and metric.sum.aggregation_temporality == 2  # cumulative
    point = _points(metric, "sum")[(("provider", "github"),)]
    assert point.as_double == 3.0
    assert 0 < point.start_time_unix_nano <= point.time_unix_nano  # from `_created`


def test_otlp_gauge_is_a_gauge(pushed_otlp: dict[str, Any]) -> None:
    metric = pushed_otlp["club_queue_depth"]
    assert metric.description == "Jobs waiting"
    assert [p.as_double for p in metric.gauge.data_points] == [4.0]


def test_otlp_histogram_is_a_histogram_with_the_same_buckets(pushed_otlp: dict[str, Any]) -> None:
    metric = pushed_otlp["club_upload_seconds"]
    assert metric.unit == ""  # the family has none
    point = _points(metric, "histogram")[(("kind", "image"),)]
    bounds = [b for b in Histogram.DEFAULT_BUCKETS if b != float("inf")]
    assert list(point.explicit_bounds) == bounds
    # Per-bucket counts (Prometheus's are cumulative): 0.3 lands in (0.25, 0.5].
    assert list(point.bucket_counts) == [1 if b == 0.5 else 0 for b in [*bounds, float("inf")]]
    assert point.count == 1 and point.sum == pytest.approx(0.3)
    # The exemplar of the bucket, with its trace and span (the spec: SHOULD be kept).
    [exemplar] = point.exemplars
    assert (exemplar.trace_id.hex(), exemplar.span_id.hex()) == (TRACE_ID, SPAN_ID)
    assert exemplar.as_double == pytest.approx(0.3) and exemplar.time_unix_nano > 0


def test_otlp_summary_is_a_summary(pushed_otlp: dict[str, Any]) -> None:
    metric = pushed_otlp["club_request_size_bytes"]
    assert metric.unit == "By"  # the UNIT "bytes", in OpenTelemetry's abbreviation
    [point] = metric.summary.data_points
    assert (point.count, point.sum, list(point.quantile_values)) == (2, 400.0, [])


def test_otlp_info_and_stateset_are_non_monotonic_sums(pushed_otlp: dict[str, Any]) -> None:
    info = pushed_otlp["club_build_info"]
    assert not info.sum.is_monotonic
    assert {k: _value(p) for k, p in _points(info, "sum").items()} == {(("version", "1.2"),): 1.0}
    state = pushed_otlp["club_state"]
    assert not state.sum.is_monotonic
    assert {k: _value(p) for k, p in _points(state, "sum").items()} == {
        (("club_state", "closed"),): 1.0,
        (("club_state", "open"),): 0.0,
    }


def test_otlp_keeps_the_prometheus_type_as_metadata(pushed_otlp: dict[str, Any]) -> None:
    for family in club_registry().collect():
        sample_names = {sample.name for sample in family.samples}
        [name] = [n for n in pushed_otlp if n in sample_names | {family.name}]
        metadata = attributes(pushed_otlp[name].metadata)
        assert metadata == {"prometheus.type": family.type}, name


def test_otlp_drops_gauge_histograms(pushed_otlp: dict[str, Any]) -> None:
    # prometheus_client has no GaugeHistogram metric; the runtime families are all kept.
    assert {"python_gc_collections_total", "process_cpu_seconds_total"} <= set(pushed_otlp)


# --- remote write and console --------------------------------------------------------------------


def test_remote_write_carries_every_sample_prometheus_client_writes(processes: Processes) -> None:
    config = {"global": {"scrape_interval": "15s"}, "scrape_configs": []}
    prometheus = start_prometheus(processes, config, "--web.enable-remote-write-receiver")
    registry = club_registry()
    env = {
        "OTEL_METRICS_EXPORTER": "prometheus_remote_write",
        "OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT": f"{prometheus}/api/v1/write",
    }
    _, telemetry = telemetry_for(registry, env)
    assert telemetry.meter_provider is not None
    telemetry.meter_provider.force_flush()
    telemetry.shutdown()
    samples = [
        sample
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
        if not sample.name.endswith("_created")  # start times on push paths, not series
    ]
    assert len(samples) > 20
    for sample in samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
        selector = f'{sample.name}{{{labels}{"," if labels else ""}job="fastapi"}}'
        result = httpx.get(f"{prometheus}/api/v1/query", params={"query": selector}).json()
        values = [float(series["value"][1]) for series in result["data"]["result"]]
        assert values == [sample.value], selector


CONSOLE_SCRIPT = """
from tests.test_prometheus_bridge import club_registry, telemetry_for
_, telemetry = telemetry_for(club_registry(), {"OTEL_METRICS_EXPORTER": "console"})
telemetry.meter_provider.force_flush()
"""


def test_console_prints_the_summary() -> None:
    # In a process of its own: the console exporter holds the stdout of its import time.
    root = Path(__file__).resolve().parents[1]
    argv = [sys.executable, "-c", CONSOLE_SCRIPT]
    out = subprocess.run(argv, cwd=root, capture_output=True, text=True, check=True).stdout
    printed, _ = json.JSONDecoder().raw_decode(out)  # the first export
    metrics = {
        metric["name"]: metric
        for resource in printed["resource_metrics"]
        for scope in resource["scope_metrics"]
        for metric in scope["metrics"]
    }
    [point] = metrics["club_request_size_bytes"]["data"]["data_points"]
    assert (point["count"], point["sum"]) == (2, 400.0)


# --- names defined on both sides -----------------------------------------------------------------


def test_a_contract_name_in_a_bridged_registry_stops_start_up() -> None:
    registry = CollectorRegistry()
    # The original service's own definition, still imported somewhere.
    Counter("fastapi_requests_total", "Total number of requests", registry=registry)
    with pytest.raises(TelemetryConfigError, match="'fastapi_requests_total' is defined twice"):
        setup_telemetry(FastAPI(), TelemetryConfig(), registries=[registry])


def test_an_instrument_named_like_a_bridged_metric_is_refused() -> None:
    _, telemetry = telemetry_for(club_registry(), {})
    meter = telemetry.meter
    with pytest.raises(TelemetryConfigError, match="club_queue_depth"):
        meter.create_up_down_counter("club.queue.depth")
    with pytest.raises(TelemetryConfigError, match="club_logins_total"):
        meter.create_counter("club.logins")
    with pytest.raises(TelemetryConfigError, match="club_upload_seconds"):
        meter.create_histogram("club.upload", unit="s")
    meter.create_counter("club.signups")  # a name of its own is fine
    telemetry.shutdown()


def test_one_name_in_two_bridged_registries_stops_start_up() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    Gauge("club_queue_depth", "Jobs waiting", registry=first)
    Gauge("club_queue_depth", "Jobs waiting", registry=second)
    with pytest.raises(TelemetryConfigError, match="two of the prometheus_client registries"):
        setup_telemetry(FastAPI(), TelemetryConfig(), registries=[first, second])


def test_a_clash_registered_after_start_up_is_left_out_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    app, telemetry = telemetry_for(registry, {})
    telemetry.meter.create_counter("club.signups").add(2)
    Counter("club_signups_total", "Signups", registry=registry).inc(5)
    with TestClient(app) as client, caplog.at_level(logging.ERROR):
        lines = client.get("/metrics").text.splitlines()
    telemetry.shutdown()
    assert [line for line in lines if line.startswith("club_signups_total")] == [
        "club_signups_total 2.0"
    ]
    assert "'club_signups_total' is defined twice" in caplog.text


def test_an_undeclared_instrument_wins_over_a_bridged_metric_on_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    Counter("club_signups_total", "Signups", registry=registry).inc(5)
    app, telemetry = telemetry_for(registry, {})
    assert telemetry.meter_provider is not None
    # Straight from the provider, so the bridge is not told of it.
    meter = telemetry.meter_provider.get_meter("club")
    meter.create_counter("club.signups").add(2)
    with TestClient(app) as client, caplog.at_level(logging.ERROR):
        lines = client.get("/metrics").text.splitlines()
    telemetry.shutdown()
    assert [line for line in lines if line.startswith("club_signups_total")] == [
        "club_signups_total 2.0"
    ]
    assert "'club_signups_total' is defined twice" in caplog.text


# --- gauges across workers -----------------------------------------------------------------------

LIVE_VALUES = {101: 3.0, 102: 5.0}
EXITED_VALUES = {103: 9.0, 104: 1.0}


def prometheus_client_multiprocess(mode: str, directory: Path, monkeypatch: Any) -> set[Any]:
    """The gauge as prometheus_client's multiprocess mode combines it: processes 101 and 102
    live, 103 and 104 exited."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    for pid, value in {**LIVE_VALUES, **EXITED_VALUES}.items():
        process_value = prometheus_client.values.MultiProcessValue(lambda pid=pid: pid)
        monkeypatch.setattr(prometheus_client.values, "ValueClass", process_value)
        Gauge("club_queue_depth", "Jobs waiting", registry=None, multiprocess_mode=mode).set(value)
    for pid in EXITED_VALUES:
        mark_process_dead(pid, str(directory))
    collected = MultiProcessCollector(None, path=str(directory)).collect()  # type: ignore[arg-type]
    samples = [s for family in collected for s in family.samples]
    return {(s.name, tuple(sorted(s.labels.items())), s.value) for s in samples}


def ours(mode: str, folded: bool) -> set[Any]:
    """The same through our snapshots; `folded`: the exited workers' final snapshots merged
    into one first (and snapshotted again without the modes), as a directory may keep them."""
    modes = GaugeModes({"club_queue_depth": mode})

    def snapshot(pid: int, value: float) -> dict[str, Any]:
        family = GaugeMetricFamily("club_queue_depth", "Jobs waiting", value=value)
        return {**snapshot_of([], [family], modes), "pid": pid}

    [(own_pid, own_value), *live] = LIVE_VALUES.items()
    peers = [snapshot(pid, value) for pid, value in live]
    finals = [kept_after_exit(snapshot(pid, value)) for pid, value in EXITED_VALUES.items()]
    if folded:
        _, families = merge(finals[0], finals[1:])
        finals = [kept_after_exit({**snapshot_of([], families), "pid": 1})]
    # Through JSON, as the snapshots travel between workers.
    peers = json.loads(json.dumps(peers + finals))
    _, merged = merge(snapshot(own_pid, own_value), peers)
    samples = [s for family in merged for s in family.samples]
    return {(s.name, tuple(sorted(s.labels.items())), s.value) for s in samples}


@pytest.mark.parametrize("folded", [False, True], ids=["finals", "folded"])
@pytest.mark.parametrize("mode", MODES)
def test_gauge_modes_combine_as_prometheus_client_multiprocess(
    mode: str, folded: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ours(mode, folded) == prometheus_client_multiprocess(mode, tmp_path, monkeypatch)


OBSERVATIONS = {101: [0.2, 3.0], 102: [0.7], 103: [12.0, 0.01, 0.4]}  # 103 has exited


def observe(registry: CollectorRegistry, kind: str, values: list[float]) -> None:
    """One worker's metric of `kind` with its observations."""
    if kind == "counter":
        jobs = Counter("club_jobs_total", "Jobs", ["queue"], registry=registry).labels("mail")
        for value in values:
            jobs.inc(value)
        return
    metric = Histogram if kind == "histogram" else Summary
    sizes = metric("club_job_size", "Job size", ["queue"], registry=registry).labels("mail")
    for value in values:
        sizes.observe(value)


@pytest.mark.parametrize("kind", ["counter", "histogram", "summary"])
def test_counters_histograms_and_summaries_add_up_as_prometheus_client_multiprocess(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for pid, values in OBSERVATIONS.items():
        process_value = prometheus_client.values.MultiProcessValue(lambda pid=pid: pid)
        monkeypatch.setattr(prometheus_client.values, "ValueClass", process_value)
        observe(CollectorRegistry(), kind, values)
    mark_process_dead(103, str(tmp_path))
    collected = MultiProcessCollector(None, path=str(tmp_path)).collect()  # type: ignore[arg-type]
    expected = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in collected for s in f.samples
    }
    monkeypatch.setattr(prometheus_client.values, "ValueClass", prometheus_client.values.MutexValue)

    snapshots = []
    for pid, values in OBSERVATIONS.items():
        registry = CollectorRegistry()
        observe(registry, kind, values)
        snapshot = {**snapshot_of([], registry.collect()), "pid": pid}
        snapshots.append(kept_after_exit(snapshot) if pid == 103 else snapshot)
    _, families = merge(snapshots[0], json.loads(json.dumps(snapshots[1:])))
    merged = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families
        for s in f.samples
        if not s.name.endswith("_created")  # multiprocess mode has none
    }
    assert merged == pytest.approx(expected)


def test_summary_quantiles_stay_per_worker() -> None:
    def snapshot(pid: int, count: float, median: float) -> dict[str, Any]:
        family = SummaryMetricFamily("club_job_size", "Job size", count_value=count, sum_value=1)
        family.add_sample("club_job_size", {"quantile": "0.5"}, median)
        return {**snapshot_of([], [family]), "pid": pid}

    _, [family] = merge(snapshot(101, 2, 0.3), [snapshot(102, 5, 0.9)])
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    assert samples == {
        ("club_job_size", (("pid", "101"), ("quantile", "0.5"))): 0.3,
        ("club_job_size", (("pid", "102"), ("quantile", "0.5"))): 0.9,
        ("club_job_size_count", ()): 7,
        ("club_job_size_sum", ()): 2,
    }


def test_gauge_modes_from_the_environment_and_the_argument() -> None:
    env = {"OTEL_PYTHON_FASTAPI_GAUGE_MODES": "club_queue_depth=livesum, club_temp=max"}
    modes = GaugeModes.from_env(env, {"club_temp": "min"})
    assert modes.mode("club_queue_depth", "gauge") == "livesum"
    assert modes.mode("club_temp", "gauge") == "min"  # the argument wins
    assert modes.mode("club_other", "gauge") == "all"  # prometheus_client's default
    assert modes.mode("club_logins", "counter") == "sum"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("club_queue_depth=mostrecent", "needs the time each worker last set the gauge"),
        ("club_queue_depth=average", "unknown gauge mode 'average'"),
        ("club_queue_depth", "name=mode pairs"),
    ],
)
def test_unusable_gauge_modes_stop_start_up(text: str, message: str) -> None:
    env = {"OTEL_PYTHON_FASTAPI_GAUGE_MODES": text}
    with pytest.raises(TelemetryConfigError, match=message):
        setup_telemetry(FastAPI(), TelemetryConfig.from_env(env), registries=[])
