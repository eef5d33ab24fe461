"""Alerting: Alertmanager answers, Prometheus sends its alerts to it, and no notification fails,
neither from Prometheus to Alertmanager nor from Alertmanager to a receiver."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from scripts.doctor.rows import COMPOSE, FAIL, OK, Config, Row, get, json_body, service_hint

# What render.sh routes to when no receiver URL is set (alertmanager/alertmanager.yml).
VIEW_ONLY = "receiver: view-only"
# Prometheus's own counters of alerts it could not hand to Alertmanager.
PROMETHEUS_FAILURES = (
    "prometheus_notifications_errors_total",
    "prometheus_notifications_dropped_total",
)


def check_alertmanager_health(cfg: Config, client: httpx.Client) -> Row:
    check = "alertmanager /-/healthy"
    response = get(client, f"{cfg.alertmanager}/-/healthy")
    if isinstance(response, str) or response.status_code != 200:
        detail = response if isinstance(response, str) else f"HTTP {response.status_code}"
        hint = f"{service_hint('alertmanager')}; a bad receiver URL or config stops it (the log "
        hint += "says which): `amtool check-config alertmanager/alertmanager.yml`"
        return Row(check, FAIL, detail, hint)
    answer = get(client, f"{cfg.alertmanager}/api/v2/status")
    status = {} if isinstance(answer, str) else json_body(answer)
    version = status.get("versionInfo", {}).get("version", "?")
    config = status.get("config", {}).get("original", "")
    if VIEW_ONLY in config:
        return Row(check, OK, f"{version}; no receiver set: alerts are shown, sent to no one")
    return Row(check, OK, f"{version}; receivers configured")


def check_prometheus_sends_alerts(cfg: Config, client: httpx.Client) -> Row:
    check = "prometheus -> alertmanager"
    response = get(client, f"{cfg.prometheus}/api/v1/alertmanagers")
    if isinstance(response, str) or response.status_code != 200:
        return Row(check, FAIL, str(response), f"open {cfg.prometheus}/status")
    active = json_body(response).get("data", {}).get("activeAlertmanagers", [])
    if not active:
        hint = (
            "prometheus/prometheus.yml (each variant) needs the `alerting:` block with target "
            f"alertmanager:9093; then `{COMPOSE} restart prometheus`"
        )
        return Row(check, FAIL, "Prometheus has no active Alertmanager", hint)
    return Row(check, OK, ", ".join(item["url"] for item in active))


def _sum(text: str, name: str) -> dict[str, float]:
    """Samples of counter `name` (without _total) summed by their integration label."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == name:
            for sample in family.samples:
                if sample.name == f"{name}_total":
                    key = sample.labels.get("integration", "")
                    totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def check_prometheus_notifications(cfg: Config, client: httpx.Client) -> Row:
    """Alerts Prometheus failed to hand to Alertmanager over the last 5 minutes."""
    check = "prometheus notifications"
    failures = " + ".join(f"sum(increase({name}[5m]))" for name in PROMETHEUS_FAILURES)
    response = get(client, f"{cfg.prometheus}/api/v1/query", params={"query": failures})
    if isinstance(response, str) or response.status_code != 200:
        return Row(check, FAIL, str(response), f"open {cfg.prometheus}/graph")
    result = json_body(response).get("data", {}).get("result", [])
    failed = float(result[0]["value"][1]) if result else 0.0
    if failed > 0:
        hint = (
            "Prometheus cannot reach Alertmanager: see the rows above; "
            f"`{COMPOSE} logs --tail=50 prometheus | grep -i notif`"
        )
        return Row(check, FAIL, f"{failed:.0f} alert sends failed or dropped in 5 min", hint)
    return Row(check, OK, "no failed or dropped alert sends in 5 min")


def check_receiver_notifications(cfg: Config, client: httpx.Client) -> Row:
    """Requests to receivers that failed, retries included (counted since Alertmanager started;
    a failed request is retried, so a notification can still arrive late)."""
    check = "alertmanager notifications"
    response = get(client, f"{cfg.alertmanager}/metrics")
    if isinstance(response, str) or response.status_code != 200:
        return Row(check, FAIL, str(response), service_hint("alertmanager"))
    sent = _sum(response.text, "alertmanager_notification_requests")
    failed = _sum(response.text, "alertmanager_notification_requests_failed")
    failed = {integration: count for integration, count in failed.items() if count}
    if failed:
        detail = ", ".join(
            f"{integration}: {value:.0f} of {sent.get(integration, 0):.0f} requests failed"
            for integration, value in sorted(failed.items())
        )
        hint = (
            "a receiver refuses them: check ALERTMANAGER_PAGE_URL / ALERTMANAGER_NOTIFY_URL in "
            f".env and `{COMPOSE} logs --tail=50 alertmanager | grep -i notify`; after a fix, "
            f"`{COMPOSE} up -d alertmanager` (counted since Alertmanager started)"
        )
        return Row(check, FAIL, f"since start: {detail}", hint)
    return Row(check, OK, f"{sum(sent.values()):.0f} requests since start, none failed")
