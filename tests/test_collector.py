"""The export paths: collector config, compose overrides, Prometheus; and the trace path to Tempo.

No collector or Tempo binary can run here, so `collector/otel-collector.yaml` and
`tempo/tempo.yaml` are checked against the components and options of the pinned versions and
against what compose, Prometheus and Grafana expect of them. The Prometheus variants go through
promtool, each compose stack and combination through docker-compose (resolved, so the assertions
see what compose would run).

Metrics take one of three paths (direct scrape, collector, remote write); traces take one path
on all of them: app -> collector (OTLP/HTTP) -> Tempo (OTLP/gRPC).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry

from otel.export.prometheus_reader import metric_type
from otel.metrics.bridge import runtime_registry
from otel.metrics.contract import CONTRACT
from otel.metrics.naming import MetricType, metric_name
from otel.metrics.prometheus_to_otlp import Times, otlp_metric
from tests.test_compose import (
    DEV,
    DUMMY_SECRETS,
    PROD,
    ROOT,
    ROOT_USERS,
    mounts,
    ports,
    prometheus_flags,
    require_tool,
    run_compose,
)

COLLECTOR_CONFIG = ROOT / "collector" / "otel-collector.yaml"
COLLECTOR_IMAGE = "otel/opentelemetry-collector-contrib:0.147.0"
COLLECTOR_SERVICE = "otel-collector"
COLLECTOR_CONFIG_MOUNT = "/etc/otelcol-contrib/config.yaml"
PROMETHEUS_DIR = ROOT / "prometheus"
DIRECT_PROMETHEUS = PROMETHEUS_DIR / "prometheus.yml"
TEMPO_CONFIG = ROOT / "tempo" / "tempo.yaml"
TEMPO_IMAGE = "grafana/tempo:3.0.3"
TEMPO_SERVICE = "tempo"
TEMPO_CONFIG_MOUNT = "/etc/tempo/tempo.yaml"
TEMPO_DATA = "/var/tempo"
TEMPO_DATASOURCE = ROOT / "grafana" / "provisioning" / "datasources" / "tempo.yml"
TRACES_EXPORTER = "otlp_grpc/tempo"
# The Prometheus job of the app on the direct path; with honor_labels it is also the `job` the
# collector writes (from service.name), so rules and dashboards see one job on every path.
APP_JOB = "fastapi"

# A record of a fixed external schema, not derived from our code: the components of
# otelcol-contrib 0.147.0 that the config may name, with the options each accepts, as the
# components' config structs at v0.147.0 define them: in github.com/open-telemetry/
# opentelemetry-collector, receiver/otlpreceiver, processor/memorylimiterprocessor,
# processor/batchprocessor and exporter/otlpexporter; in opentelemetry-collector-contrib,
# extension/healthcheckextension and exporter/prometheusexporter (config.go). An unknown key stops
# the collector at start, so each key used must be one of these. Moving the pin means reading
# those files again (test_collector_service checks the config names the pin it was written for).
OPTIONS: dict[str, dict[str, set[str]]] = {
    "extensions": {"health_check": {"endpoint", "path", "response_body", "tls"}},
    "receivers": {"otlp": {"protocols"}},
    "processors": {
        "memory_limiter": {
            "check_interval",
            "limit_mib",
            "spike_limit_mib",
            "limit_percentage",
            "spike_limit_percentage",
        },
        "batch": {"timeout", "send_batch_size", "send_batch_max_size", "metadata_keys"},
    },
    "exporters": {
        "prometheus": {
            "endpoint",
            "tls",
            "namespace",
            "const_labels",
            "send_timestamps",
            "metric_expiration",
            "resource_to_telemetry_conversion",
            "enable_open_metrics",
            "without_scope_info",
            "add_metric_suffixes",
            "translation_strategy",
        },
        # The OTLP gRPC exporter; `otlp` is its deprecated alias since 0.144.
        "otlp_grpc": {
            "endpoint",
            "tls",
            "headers",
            "compression",
            "timeout",
            "sending_queue",
            "retry_on_failure",
            "keepalive",
            "balancer_name",
            "wait_for_ready",
        },
    },
}
OTLP_PROTOCOL_OPTIONS = {"endpoint", "max_recv_msg_size_mib", "cors", "tls"}
# OTEL_EXPORTER_OTLP_PROTOCOL -> the receiver protocol that accepts it.
RECEIVER_PROTOCOLS = {"http/protobuf": "http", "grpc": "grpc"}

# A record of a fixed external schema: keys of grafana/tempo 3.0.3's config, as
# github.com/grafana/tempo cmd/tempo/app/config.go and the structs it embeds define them at that
# tag, that tempo.yaml may use; Tempo reads its file with yaml.UnmarshalStrict, so any other key
# stops it.
TEMPO_OPTIONS: dict[str, Any] = {
    "server": {"http_listen_address", "http_listen_port", "grpc_listen_port", "log_level"},
    "distributor": {"receivers", "log_received_spans", "log_discarded_spans"},
    "storage": {"trace": {"backend", "wal", "local", "block", "search", "pool", "blocklist_poll"}},
    "usage_report": {"reporting_enabled"},
    "backend_worker": {"compaction"},
}


@dataclass(frozen=True)
class Variant:
    """An export path as a compose override on top of a base file."""

    base: Path
    override: Path
    prometheus_config: Path
    secrets: dict[str, str]

    @property
    def collector(self) -> bool:
        return "collector" in self.override.name


COLLECTOR_OVERRIDE = ROOT / "docker-compose.collector.yml"
REMOTE_WRITE_OVERRIDE = ROOT / "docker-compose.remote-write.yml"
VARIANTS = {
    f"{stack}-{path}": Variant(base, override, PROMETHEUS_DIR / f"prometheus.{path}.yml", secrets)
    for stack, base, secrets in (("dev", DEV, {}), ("prod", PROD, DUMMY_SECRETS))
    for path, override in (
        ("collector", COLLECTOR_OVERRIDE),
        ("remote-write", REMOTE_WRITE_OVERRIDE),
    )
}
COLLECTOR_VARIANTS = [name for name, variant in VARIANTS.items() if variant.collector]
REMOTE_WRITE_VARIANTS = [name for name, variant in VARIANTS.items() if not variant.collector]
# Every stack compose can run: each base file alone (the direct path), and with each override.
STACKS: dict[str, tuple[tuple[Path, ...], dict[str, str]]] = {
    "dev": ((DEV,), {}),
    "prod": ((PROD,), DUMMY_SECRETS),
    **{name: ((v.base, v.override), v.secrets) for name, v in VARIANTS.items()},
}
# Overrides that change the metrics store, not the export path (direct path only).
VICTORIAMETRICS = ROOT / "docker-compose.victoriametrics.yml"
STORE_STACKS: dict[str, tuple[tuple[Path, ...], dict[str, str]]] = {
    "dev-victoriametrics": ((DEV, VICTORIAMETRICS), {}),
    "prod-victoriametrics": ((PROD, VICTORIAMETRICS), DUMMY_SECRETS),
}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def collector_config() -> dict[str, Any]:
    config: dict[str, Any] = load(COLLECTOR_CONFIG)
    return config


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def seconds(duration: str) -> float:
    """A Go/Prometheus duration such as `1m` or `90s` (one unit only)."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", duration)
    assert match, f"unsupported duration {duration!r}"
    return int(match[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match[2]]


def scrape_jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


def targets(job: dict[str, Any]) -> list[str]:
    """Static targets, and name:port of each DNS-discovered name (one target per address)."""
    discovered = [
        f"{name}:{discovery['port']}"
        for discovery in job.get("dns_sd_configs", [])
        for name in discovery["names"]
    ]
    return [
        target for static in job.get("static_configs", []) for target in static["targets"]
    ] + discovered


def exporter_port() -> int:
    return port_of(collector_config()["exporters"]["prometheus"]["endpoint"])


def tempo_config() -> dict[str, Any]:
    config: dict[str, Any] = load(TEMPO_CONFIG)
    return config


# --- the collector config ---


def test_every_component_in_a_pipeline_is_defined_and_every_defined_one_is_used() -> None:
    config = collector_config()
    pipelines = config["service"]["pipelines"]
    for kind in ("receivers", "processors", "exporters"):
        used = {name for pipeline in pipelines.values() for name in pipeline.get(kind, [])}
        assert used == set(config.get(kind) or {}), kind
    assert set(config["service"]["extensions"]) == set(config.get("extensions") or {})


def test_pipelines() -> None:
    pipelines = collector_config()["service"]["pipelines"]
    assert set(pipelines) == {"metrics", "traces"}
    for name, pipeline in pipelines.items():
        assert pipeline["receivers"] == ["otlp"], name
        assert pipeline["processors"][0] == "memory_limiter", name
        assert pipeline["processors"][-1] == "batch", name
    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    assert pipelines["traces"]["exporters"] == [TRACES_EXPORTER]


def test_traces_go_to_tempo_over_plain_grpc_on_its_receiver_port() -> None:
    exporter = collector_config()["exporters"][TRACES_EXPORTER]
    receiver = tempo_config()["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]
    host, port = exporter["endpoint"].rsplit(":", 1)
    assert (host, int(port)) == (TEMPO_SERVICE, port_of(receiver["endpoint"]))
    # Tempo's receiver has no TLS; the hop stays on the compose network.
    assert exporter["tls"] == {"insecure": True}
    assert "tls" not in receiver


def test_components_and_options_exist_in_the_pinned_version() -> None:
    config = collector_config()
    for kind, known in OPTIONS.items():
        for component_id, options in (config.get(kind) or {}).items():
            component = component_id.split("/", 1)[0]
            assert component in known, f"{kind}: {component_id}"
            assert set(options or {}) <= known[component], f"{kind}: {component_id}"
    for protocol, options in config["receivers"]["otlp"]["protocols"].items():
        assert protocol in RECEIVER_PROTOCOLS.values()
        assert set(options or {}) <= OTLP_PROTOCOL_OPTIONS, protocol


def test_listeners_bind_every_interface_on_the_documented_ports() -> None:
    # The collector's own default is localhost, which other containers cannot reach.
    config = collector_config()
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["exporters"]["prometheus"]["endpoint"] == "0.0.0.0:8889"
    assert config["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"


def test_memory_limiter_has_a_limit() -> None:
    limiter = collector_config()["processors"]["memory_limiter"]
    assert seconds(limiter["check_interval"]) > 0
    assert 0 < limiter["spike_limit_mib"] < limiter["limit_mib"]


def test_prometheus_exporter_options_give_the_contract_names_and_labels() -> None:
    exporter = collector_config()["exporters"]["prometheus"]
    # Suffixes as the in-process exporter writes them; set explicitly, since the deprecated
    # add_metric_suffixes is ignored from 0.154 on.
    assert exporter["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    assert "add_metric_suffixes" not in exporter
    # No otel_scope_* labels, no resource attributes as labels, no prefix, no extra labels.
    assert exporter["without_scope_info"] is True
    assert exporter["resource_to_telemetry_conversion"] == {"enabled": False}
    assert not exporter.get("namespace")
    assert not exporter.get("const_labels")
    assert not exporter.get("send_timestamps")
    # Exemplars are only exposed in OpenMetrics.
    assert exporter["enable_open_metrics"] is True
    assert seconds(exporter["metric_expiration"]) > 0


def test_the_contract_names_are_what_the_sdk_prometheus_exporter_writes() -> None:
    """The oracle is upstream's exporter (opentelemetry-exporter-prometheus): the contract's
    streams and units, recorded through SDK instruments, come out under the contract's names."""
    registry = CollectorRegistry(auto_describe=False)
    reader = PrometheusMetricReader(disable_target_info=True, registry=registry)
    meter = MeterProvider(metric_readers=[reader], shutdown_on_exit=False).get_meter("contract")
    for spec in CONTRACT:
        if spec.kind == "counter":
            meter.create_counter(spec.stream, unit=spec.unit).add(1)
        elif spec.kind == "histogram":
            meter.create_histogram(spec.stream, unit=spec.unit).record(0.1)
        else:
            meter.create_gauge(spec.stream, unit=spec.unit).set(1)
    written = {sample.name for family in registry.collect() for sample in family.samples}
    for spec in CONTRACT:
        series = spec.prometheus_name + ("_bucket" if spec.kind == "histogram" else "")
        assert series in written, (spec.stream, written)


CONTRACT_TYPES = {
    "counter": MetricType.MONOTONIC_COUNTER,
    "gauge": MetricType.GAUGE,
    "histogram": MetricType.HISTOGRAM,
}


def test_underscore_escaping_with_suffixes_gives_the_contract_names() -> None:
    """The collector's translation (otel/metrics/naming.py, whose rule tests/test_naming.py
    checks against upstream otlptranslator's own cases) gives the same contract names."""
    for spec in CONTRACT:
        name = metric_name(spec.stream, spec.unit, CONTRACT_TYPES[spec.kind])
        assert name == spec.prometheus_name
    # The runtime series are bridged from prometheus_client's collectors: the collector's
    # translation of what the bridge sends gives the names prometheus_client writes.
    times = Times(now_ns=2_000_000_000, default_start_ns=1_000_000_000)
    families = list(runtime_registry().collect())
    assert {f.name for f in families} >= {"python_gc_objects_collected", "process_cpu_seconds"}
    for family in families:
        metric = otlp_metric(family, times)
        assert metric is not None
        name = metric_name(metric.name, metric.unit, metric_type(metric))
        assert {sample.name for sample in family.samples} == {name}


# --- Tempo's config ---


def test_tempo_config_uses_only_known_keys() -> None:
    def check(config: dict[str, Any], known: Any, where: str) -> None:
        assert set(config) <= set(known), where
        if isinstance(known, dict):
            for key, value in config.items():
                check(value, known[key], f"{where}.{key}")

    check(tempo_config(), TEMPO_OPTIONS, "tempo.yaml")


def test_tempo_receives_otlp_grpc_only_on_every_interface() -> None:
    receivers = tempo_config()["distributor"]["receivers"]
    assert set(receivers) == {"otlp"}
    # Tempo's own default is localhost, which the collector's container cannot reach.
    assert receivers["otlp"]["protocols"] == {"grpc": {"endpoint": "0.0.0.0:4317"}}


def test_tempo_keeps_everything_on_its_volume() -> None:
    trace = tempo_config()["storage"]["trace"]
    assert trace["backend"] == "local"
    for path in (trace["wal"]["path"], trace["local"]["path"]):
        assert Path(path).is_relative_to(TEMPO_DATA), path
    assert tempo_config()["usage_report"] == {"reporting_enabled": False}


def test_grafana_reads_tempo_on_its_http_port() -> None:
    [datasource] = load(TEMPO_DATASOURCE)["datasources"]
    url = urlsplit(datasource["url"])
    assert (url.scheme, url.hostname) == ("http", TEMPO_SERVICE)
    assert url.port == tempo_config()["server"]["http_listen_port"]
    # `/tempo -health` asks http://localhost:3200/ready unless told another URL.
    assert url.port == 3200


# --- the Prometheus configs of the push paths ---


def test_collector_prometheus_config_differs_from_the_direct_one_only_in_the_app_job() -> None:
    direct = load(DIRECT_PROMETHEUS)
    via_collector = load(VARIANTS["dev-collector"].prometheus_config)
    assert {k: v for k, v in direct.items() if k != "scrape_configs"} == {
        k: v for k, v in via_collector.items() if k != "scrape_configs"
    }
    direct_jobs, collector_jobs = scrape_jobs(direct), scrape_jobs(via_collector)
    assert list(collector_jobs) == list(direct_jobs)
    for name, job in direct_jobs.items():
        if name != APP_JOB:
            assert collector_jobs[name] == job, name
    job = collector_jobs[APP_JOB]
    assert targets(job) == [f"{COLLECTOR_SERVICE}:{exporter_port()}"]
    assert job["honor_labels"] is True
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["scrape_interval"] == direct_jobs[APP_JOB]["scrape_interval"]
    # The direct path has no target_info; the collector writes one per worker.
    assert job["metric_relabel_configs"] == [
        {"source_labels": ["__name__"], "regex": "target_info", "action": "drop"}
    ]


def test_remote_write_prometheus_config_is_the_direct_one_without_the_app_job() -> None:
    direct = load(DIRECT_PROMETHEUS)
    remote_write = load(VARIANTS["dev-remote-write"].prometheus_config)
    assert {k: v for k, v in direct.items() if k != "scrape_configs"} == {
        k: v for k, v in remote_write.items() if k != "scrape_configs"
    }
    expected = [job for job in direct["scrape_configs"] if job["job_name"] != APP_JOB]
    assert remote_write["scrape_configs"] == expected


@pytest.mark.parametrize("name", ["prometheus.collector.yml", "prometheus.remote-write.yml"])
def test_promtool_check_config(name: str) -> None:
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "config", f"prometheus/{name}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- compose: each override on its base ---


@pytest.fixture(scope="module")
def resolved(empty_env_file: Path) -> dict[tuple[Path, ...], dict[str, Any]]:
    """`docker-compose config` of each combination of files, resolved once per module."""
    cache: dict[tuple[Path, ...], dict[str, Any]] = {}
    for files, secrets in [*STACKS.values(), *STORE_STACKS.values()]:
        result = run_compose(files, empty_env_file, secrets, "config")
        assert result.returncode == 0, result.stderr
        cache[files] = yaml.safe_load(result.stdout)
    return cache


def services_of(resolved: dict[tuple[Path, ...], dict[str, Any]], name: str) -> dict[str, Any]:
    services: dict[str, Any] = resolved[STACKS[name][0]]["services"]
    return services


def stacks(
    resolved: dict[tuple[Path, ...], dict[str, Any]], name: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(services of the base file, services of the base file with the override)."""
    variant = VARIANTS[name]
    base = resolved[(variant.base,)]["services"]
    return base, resolved[(variant.base, variant.override)]["services"]


def unordered_volumes(service: dict[str, Any]) -> dict[str, Any]:
    """The service, volumes sorted: merging files reorders them, which changes nothing."""
    return service | {"volumes": sorted(map(str, service.get("volumes", [])))}


@pytest.mark.parametrize("name", VARIANTS)
def test_combined_files_are_valid(empty_env_file: Path, name: str) -> None:
    variant = VARIANTS[name]
    files = (variant.base, variant.override)
    result = run_compose(files, empty_env_file, variant.secrets, "config", "-q")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", VARIANTS)
def test_override_changes_only_the_export_path(
    resolved: dict[tuple[Path, ...], dict[str, Any]], name: str
) -> None:
    base, combined = stacks(resolved, name)
    # The collector and Tempo run on every path: an override adds no service.
    assert set(combined) == set(base)
    for service in set(base) - {"fastapi", "prometheus"}:
        assert unordered_volumes(combined[service]) == unordered_volumes(base[service]), service
    app = {k: v for k, v in combined["fastapi"].items() if k != "environment"}
    assert app == {k: v for k, v in base["fastapi"].items() if k != "environment"}
    # The app keeps its settings and gains only OTEL_* ones.
    environment = combined["fastapi"]["environment"]
    base_environment = base["fastapi"]["environment"]
    assert {k: v for k, v in environment.items() if k in base_environment} == base_environment
    assert all(key.startswith("OTEL_") for key in set(environment) - set(base_environment))
    # Prometheus: only the variables its entrypoint reads (what they do: the test below).
    prometheus = {k: v for k, v in combined["prometheus"].items() if k != "environment"}
    assert prometheus == {k: v for k, v in base["prometheus"].items() if k != "environment"}
    assert set(combined["prometheus"]["environment"]) == set(base["prometheus"]["environment"])


@pytest.mark.parametrize("name", VARIANTS)
def test_prometheus_runs_the_variant_config(
    resolved: dict[tuple[Path, ...], dict[str, Any]], tmp_path: Path, name: str
) -> None:
    """Started as compose would start it, Prometheus differs from the base file's only in its
    config file and, on the remote-write path, the receiver."""
    variant = VARIANTS[name]
    base, combined = stacks(resolved, name)
    base_flags = prometheus_flags(base["prometheus"], tmp_path / "base")
    flags = prometheus_flags(combined["prometheus"], tmp_path / "variant")
    assert flags["config.file"] == str(variant.prometheus_config)
    receiver = "false" if variant.collector else "true"
    assert flags["web.enable-remote-write-receiver"] == receiver
    changed = {"config.file", "web.enable-remote-write-receiver"}
    run_here = {"web.listen-address", "storage.tsdb.path"}
    assert {k: v for k, v in flags.items() if k not in changed | run_here} == {
        k: v for k, v in base_flags.items() if k not in changed | run_here
    }
    for job in load(variant.prometheus_config)["scrape_configs"]:
        for target in targets(job):
            assert target.split(":")[0] in combined, f"{job['job_name']}: {target}"


@pytest.mark.parametrize("name", STACKS)
def test_app_sends_traces_to_the_collector_receiver_on_every_path(
    resolved: dict[tuple[Path, ...], dict[str, Any]], name: str
) -> None:
    environment = services_of(resolved, name)["fastapi"]["environment"]
    assert environment["OTEL_TRACES_EXPORTER"] == "otlp"
    protocol = environment.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    receiver = collector_config()["receivers"]["otlp"]["protocols"][RECEIVER_PROTOCOLS[protocol]]
    endpoint = urlsplit(environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (endpoint.scheme, endpoint.hostname) == ("http", COLLECTOR_SERVICE)
    assert endpoint.port == port_of(receiver["endpoint"])
    assert endpoint.path in ("", "/")  # the SDK appends /v1/traces (and /v1/metrics) itself
    assert not {key for key in environment if key.startswith("OTEL_EXPORTER_OTLP_TRACES_")}
    # Every request sampled unless .env says otherwise; the ids become the exemplars.
    assert environment["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"
    # With honor_labels, `job` is service.name: it must be the direct path's job.
    assert environment["OTEL_SERVICE_NAME"] == APP_JOB


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_direct_path_keeps_metrics_on_the_scraped_endpoint(
    resolved: dict[tuple[Path, ...], dict[str, Any]], name: str
) -> None:
    # Only the traces use the OTLP endpoint: the default metrics exporter is /metrics.
    environment = services_of(resolved, name)["fastapi"]["environment"]
    assert "OTEL_METRICS_EXPORTER" not in environment


@pytest.mark.parametrize("name", COLLECTOR_VARIANTS)
def test_app_pushes_metrics_over_otlp_on_the_collector_path(
    resolved: dict[tuple[Path, ...], dict[str, Any]], name: str
) -> None:
    _, combined = stacks(resolved, name)
    assert combined["fastapi"]["environment"]["OTEL_METRICS_EXPORTER"] == "otlp"
    assert APP_JOB in scrape_jobs(load(VARIANTS[name].prometheus_config))


def test_only_the_collector_path_scrapes_the_collector() -> None:
    """Direct and remote-write paths push no metrics to it: a scrape would be empty, or
    double-count if the app pushed there too."""
    for variant in [DIRECT_PROMETHEUS, *(v.prometheus_config for v in VARIANTS.values())]:
        scraped = {
            (job["job_name"], target)
            for job in load(variant)["scrape_configs"]
            for target in targets(job)
            if target.split(":")[0] in (COLLECTOR_SERVICE, TEMPO_SERVICE)
        }
        via_collector = variant == VARIANTS["dev-collector"].prometheus_config
        expected = {(APP_JOB, f"{COLLECTOR_SERVICE}:{exporter_port()}")} if via_collector else set()
        assert scraped == expected, variant.name


@pytest.mark.parametrize("name", STACKS)
def test_collector_service(resolved: dict[tuple[Path, ...], dict[str, Any]], name: str) -> None:
    services = services_of(resolved, name)
    collector = services[COLLECTOR_SERVICE]
    assert collector["image"] == COLLECTOR_IMAGE
    # The config names the version its options were checked against: moving the pin means
    # checking them again (OPTIONS above).
    assert f"Written for {COLLECTOR_IMAGE};" in COLLECTOR_CONFIG.read_text()
    assert collector["command"] == [f"--config={COLLECTOR_CONFIG_MOUNT}"]
    assert mounts(collector) == {COLLECTOR_CONFIG_MOUNT: (str(COLLECTOR_CONFIG), True)}
    # Reached by the app and Prometheus on the compose network only.
    assert ports(collector) == set()
    assert "expose" not in collector
    assert "network_mode" not in collector
    # Distroless image: no shell or client to run a healthcheck, so nothing may wait for it.
    assert "healthcheck" not in collector
    for service, config in services.items():
        assert COLLECTOR_SERVICE not in config.get("depends_on", {}), service


@pytest.mark.parametrize("name", STACKS)
def test_tempo_service(resolved: dict[tuple[Path, ...], dict[str, Any]], name: str) -> None:
    services = services_of(resolved, name)
    tempo = services[TEMPO_SERVICE]
    assert tempo["image"] == TEMPO_IMAGE
    assert f"Written for {TEMPO_IMAGE};" in TEMPO_CONFIG.read_text()
    assert tempo["command"] == [f"-config.file={TEMPO_CONFIG_MOUNT}"]
    assert mounts(tempo) == {
        TEMPO_CONFIG_MOUNT: (str(TEMPO_CONFIG), True),
        TEMPO_DATA: ("tempo_data", False),
    }
    assert ports(tempo) == set()
    assert "expose" not in tempo
    # Tempo 3's binary checks its own /ready: the only way, the image has no shell or wget.
    assert tempo["healthcheck"]["test"] == ["CMD", "/tempo", "-health"]
    # A slow Tempo must not hold back the metrics: the collector queues and retries spans.
    for service, config in services.items():
        assert TEMPO_SERVICE not in config.get("depends_on", {}), service


@pytest.mark.parametrize("name", COLLECTOR_VARIANTS)
def test_collector_keeps_series_for_several_pushes(
    resolved: dict[tuple[Path, ...], dict[str, Any]], name: str
) -> None:
    _, combined = stacks(resolved, name)
    interval_ms = int(combined["fastapi"]["environment"]["OTEL_METRIC_EXPORT_INTERVAL"])
    expiration = seconds(collector_config()["exporters"]["prometheus"]["metric_expiration"])
    assert expiration >= 3 * interval_ms / 1000


@pytest.mark.parametrize("service", [COLLECTOR_SERVICE, TEMPO_SERVICE])
def test_prod_trace_path_is_hardened_like_every_production_service(
    resolved: dict[tuple[Path, ...], dict[str, Any]], service: str
) -> None:
    services = services_of(resolved, "prod")
    for key in ("restart", "security_opt", "logging"):
        assert services[service][key] == services["nginx"][key], key
    assert str(services[service]["user"]).split(":")[0] not in ROOT_USERS
    assert services[service]["read_only"] is True


@pytest.mark.parametrize("name", REMOTE_WRITE_VARIANTS)
def test_app_writes_to_the_prometheus_remote_write_receiver(
    resolved: dict[tuple[Path, ...], dict[str, Any]], name: str
) -> None:
    _, combined = stacks(resolved, name)
    environment = combined["fastapi"]["environment"]
    assert environment["OTEL_METRICS_EXPORTER"] == "prometheus_remote_write"
    endpoint = urlsplit(environment["OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT"])
    container_ports = {target for _, _, target in ports(combined["prometheus"])}
    assert (endpoint.scheme, endpoint.hostname, endpoint.path) == (
        "http",
        "prometheus",
        "/api/v1/write",
    )
    assert endpoint.port in container_ports
    assert environment["OTEL_SERVICE_NAME"] == APP_JOB


# --- the documented switch: one COMPOSE_FILE line in .env ---


def switch_lines() -> list[str]:
    text = (ROOT / ".env.example").read_text()
    return re.findall(r"^# (COMPOSE_FILE=\S+)$", text, flags=re.MULTILINE)


def test_env_example_documents_a_switch_for_every_stack_and_path() -> None:
    expected = {
        "COMPOSE_FILE=docker-compose.prod.yml",
        *(f"COMPOSE_FILE={v.base.name}:{v.override.name}" for v in VARIANTS.values()),
        *(f"COMPOSE_FILE={':'.join(f.name for f in files)}" for files, _ in STORE_STACKS.values()),
    }
    assert set(switch_lines()) == expected


@pytest.mark.parametrize("line", switch_lines())
def test_the_switch_line_runs_the_same_stack_as_the_files(
    resolved: dict[tuple[Path, ...], dict[str, Any]], tmp_path: Path, line: str
) -> None:
    files = tuple(ROOT / name for name in line.split("=", 1)[1].split(":"))
    env_file = tmp_path / ".env"
    env_file.write_text(line + "\n")
    switched = run_compose((), env_file, DUMMY_SECRETS if PROD in files else {}, "config")
    assert switched.returncode == 0, switched.stderr
    assert yaml.safe_load(switched.stdout) == resolved[files]
