"""Prometheus config, rules and rule tests: checked by promtool and read for the metric contract."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from stack_support import PROMETHEUS_DIR, PROMETHEUS_YML, ROOT, require_binary

from tests.servers import Processes, start_prometheus, start_service, wait_for

RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))

# The compose services Prometheus scrapes, by job.
EXPECTED_TARGETS = {
    "fastapi": ["fastapi:8000"],
    "prometheus": ["prometheus:9090"],
    "postgres": ["postgres-exporter:9187"],
    "redis": ["redis-exporter:9121"],
    "nginx": ["nginx-exporter:9113"],
    "node": ["node-exporter:9100"],
}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _rules(kind: str) -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in _load(path)["groups"]
        for rule in group["rules"]
        if kind in rule
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["check", "config", "prometheus/prometheus.yml"],
        ["check", "rules", *(str(p.relative_to(ROOT)) for p in RULE_FILES)],
        ["test", "rules", *(str(p.relative_to(ROOT)) for p in RULE_TESTS)],
    ],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool(args: list[str]) -> None:
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_scrape_intervals_and_targets() -> None:
    config = _load(PROMETHEUS_YML)
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {
        name: [t for static in job.get("static_configs", []) for t in static["targets"]]
        + [f"{n}:{d['port']}" for d in job.get("dns_sd_configs", []) for n in d["names"]]
        for name, job in jobs.items()
    }
    assert targets == EXPECTED_TARGETS
    # The app's replicas: one target per address of the service name.
    [discovery] = jobs["fastapi"]["dns_sd_configs"]
    assert (discovery["type"], discovery["names"]) == ("A", ["fastapi"])
    assert jobs["fastapi"]["scrape_interval"] == "5s"
    assert jobs["fastapi"]["metrics_path"] == "/metrics"
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS_DIR / rule_file).is_file(), rule_file


def test_every_alert_has_severity_and_summary() -> None:
    for rule in _rules("alert"):
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_every_alert_is_tested_firing_and_quiet() -> None:
    fired, quiet = set(), set()
    for path in RULE_TESTS:
        for case in _load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in _rules("alert")}
    assert alerts - fired == set(), "alerts no test makes fire"
    assert alerts - quiet == set(), "alerts no test expects to stay quiet"


def test_every_recording_rule_is_tested() -> None:
    names = {
        name
        for path in RULE_TESTS
        for case in _load(path)["tests"]
        for check in case.get("promql_expr_test", [])
        for name in re.findall(r"[a-zA-Z_:][\w:]*", check["expr"])
    }
    assert {rule["record"] for rule in _rules("record")} - names == set()


# --- the push paths' alert on a real Prometheus with the real app ---


def _alert_states(prometheus: str, name: str) -> set[str]:
    alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return {alert["state"] for alert in alerts if alert["labels"]["alertname"] == name}


@pytest.mark.e2e
def test_metrics_absent_alert_follows_the_app_on_the_remote_write_path(
    processes: Processes, tmp_path: Path
) -> None:
    """prometheus.remote-write.yml and the rules as shipped, evaluated every second and with the
    exporters' jobs left out: nothing written -> FastAPIMetricsAbsent pending; the app writing ->
    inactive. (Firing needs its 2m `for`: the promtool tests cover that, and the way back.)"""
    require_binary("prometheus")
    config = _load(PROMETHEUS_DIR / "prometheus.remote-write.yml")
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(PROMETHEUS_DIR / path) for path in config["rule_files"]]
    config["scrape_configs"] = []
    prometheus = start_prometheus(processes, config, "--web.enable-remote-write-receiver")
    wait_for(
        lambda: _alert_states(prometheus, "FastAPIMetricsAbsent") == {"pending"},
        30,
        "FastAPIMetricsAbsent pending while nothing is written",
    )
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'memos.db'}",
        "OTEL_METRICS_EXPORTER": "prometheus_remote_write",
        "OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT": f"{prometheus}/api/v1/write",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    }
    start_service(processes, "service", env)
    wait_for(
        lambda: not _alert_states(prometheus, "FastAPIMetricsAbsent"),
        30,
        "FastAPIMetricsAbsent inactive once the app writes",
    )
