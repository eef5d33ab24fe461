"""The app, Prometheus and Grafana over HTTP: are they up, and do they say what they should?"""

from __future__ import annotations

from typing import Any

import httpx

from otel.metrics.contract import scraped_series
from scripts.doctor.rows import COMPOSE, FAIL, OK, Config, Row, get, json_body, service_hint

DATASOURCE_UID = "prometheus"
ENV_GRAFANA_USER = "GRAFANA_ADMIN_USER"
ENV_GRAFANA_PASSWORD = "GRAFANA_ADMIN_PASSWORD"
# Scrape job -> compose service behind it.
JOB_SERVICES = {
    "fastapi": "fastapi",
    "prometheus": "prometheus",
    "postgres": "postgres-exporter",
    "redis": "redis-exporter",
    "nginx": "nginx-exporter",
    "node": "node-exporter",
}


def check_app_health(cfg: Config, client: httpx.Client) -> Row:
    response = get(client, f"{cfg.app}/health")
    if isinstance(response, str):
        return Row("app /health", FAIL, response, service_hint("fastapi"))
    body = json_body(response)
    if response.status_code == 200 and body.get("status") == "healthy":
        services = ", ".join(f"{k} {v}" for k, v in body.get("services", {}).items())
        return Row("app /health", OK, f"healthy ({services})")
    hint = "the app is up but a dependency is not: `{0} ps postgres redis`; `{0} logs fastapi`"
    return Row("app /health", FAIL, f"{response.status_code} {response.text}", hint.format(COMPOSE))


def sample_names(text: str) -> set[str]:
    """Metric names of the samples in a Prometheus text exposition."""
    lines = (line for line in text.splitlines() if line and not line.startswith("#"))
    return {line.split("{", 1)[0].split(" ", 1)[0] for line in lines}


def check_app_metrics(cfg: Config, client: httpx.Client) -> Row:
    """Run after /health: that request is what puts fastapi_requests_total on a fresh app."""
    url = f"{cfg.app}/metrics"
    hint = f"`curl {url}`; a 404 means OTEL_SDK_DISABLED=true or no `prometheus` in "
    hint += "OTEL_METRICS_EXPORTER"
    response = get(client, url)
    if isinstance(response, str):
        return Row("app /metrics", FAIL, response, service_hint("fastapi"))
    if response.status_code != 200:
        return Row("app /metrics", FAIL, f"HTTP {response.status_code}", hint)
    expected = scraped_series()
    missing = [name for name in expected if name not in sample_names(response.text)]
    if missing:
        return Row("app /metrics", FAIL, f"missing: {', '.join(missing)}", hint)
    return Row("app /metrics", OK, f"all {len(expected)} contract series present")


def check_prometheus_health(cfg: Config, client: httpx.Client) -> Row:
    response = get(client, f"{cfg.prometheus}/-/healthy")
    if isinstance(response, str) or response.status_code != 200:
        detail = response if isinstance(response, str) else f"HTTP {response.status_code}"
        hint = service_hint("prometheus")
        hint += "; a config error stops it: `promtool check config prometheus/prometheus.yml`"
        return Row("prometheus /-/healthy", FAIL, detail, hint)
    return Row("prometheus /-/healthy", OK, response.text.strip())


def target_row(cfg: Config, target: dict[str, Any]) -> Row:
    job, instance = target["labels"].get("job", "?"), target["labels"].get("instance", "?")
    check = f"target {job} {instance}"
    if target["health"] == "up":
        return Row(check, OK, f"up, scrape took {target.get('lastScrapeDuration', 0):.3f}s")
    detail = target.get("lastError") or "not scraped yet (wait one scrape interval)"
    hint = f"{service_hint(JOB_SERVICES.get(job, job))}; details on {cfg.prometheus}/targets"
    if job == "fastapi":
        hint += f"; `curl {cfg.app}/metrics`"
    return Row(check, FAIL, f"{target['health']}: {detail}", hint)


def check_targets(cfg: Config, client: httpx.Client) -> list[Row]:
    response = get(client, f"{cfg.prometheus}/api/v1/targets", params={"state": "active"})
    if isinstance(response, str) or response.status_code != 200:
        return [Row("prometheus targets", FAIL, str(response), f"open {cfg.prometheus}/targets")]
    targets = json_body(response).get("data", {}).get("activeTargets", [])
    if not targets:
        hint = "is prometheus/prometheus.yml mounted at /etc/prometheus? `{} logs prometheus`"
        return [Row("prometheus targets", FAIL, "no active targets", hint.format(COMPOSE))]
    return [target_row(cfg, target) for target in sorted(targets, key=_target_key)]


def _target_key(target: dict[str, Any]) -> tuple[str, str]:
    return target["labels"].get("job", ""), target["labels"].get("instance", "")


def check_grafana_health(cfg: Config, client: httpx.Client) -> Row:
    response = get(client, f"{cfg.grafana}/api/health")
    if isinstance(response, str) or response.status_code != 200:
        detail = response if isinstance(response, str) else f"HTTP {response.status_code}"
        hint = f"{service_hint('grafana')}; compose publishes it on host port 3001"
        return Row("grafana /api/health", FAIL, detail, hint)
    body = json_body(response)
    return Row("grafana /api/health", OK, f"database {body.get('database')}, {body.get('version')}")


def _datasource_failure(response: httpx.Response | str) -> Row:
    check = f"grafana datasource {DATASOURCE_UID}"
    if isinstance(response, str):
        return Row(check, FAIL, response, service_hint("grafana"))
    if response.status_code in (401, 403):
        hint = f"set {ENV_GRAFANA_USER} / {ENV_GRAFANA_PASSWORD} to Grafana's admin login"
        return Row(check, FAIL, f"HTTP {response.status_code}: login refused", hint)
    hint = (
        "not provisioned: is ./grafana/provisioning mounted at /etc/grafana/provisioning? "
        f"`{COMPOSE} exec grafana ls /etc/grafana/provisioning/datasources`"
    )
    return Row(check, FAIL, f"HTTP {response.status_code}", hint)


def check_datasource(cfg: Config, client: httpx.Client) -> Row:
    """The provisioned datasource exists, is Prometheus, and Grafana can query it."""
    check = f"grafana datasource {DATASOURCE_UID}"
    base = f"{cfg.grafana}/api/datasources/uid/{DATASOURCE_UID}"
    response = get(client, base, auth=cfg.grafana_auth)
    if isinstance(response, str) or response.status_code != 200:
        return _datasource_failure(response)
    datasource = json_body(response)
    if datasource.get("type") != "prometheus":
        return Row(check, FAIL, f"type {datasource.get('type')!r}, not prometheus", "")
    detail = f"{datasource.get('type')} at {datasource.get('url')}"
    health = get(client, f"{base}/health", auth=cfg.grafana_auth)
    if isinstance(health, str) or health.status_code == 404:  # Grafana before 9: no health API
        return Row(check, OK, f"{detail}; health check not available")
    message = json_body(health).get("message", "")
    if health.status_code != 200:
        hint = "Grafana cannot reach that URL: is the prometheus service up on the same network?"
        return Row(check, FAIL, f"{detail}: {message}", hint)
    return Row(check, OK, f"{detail}: {message}")
