"""`make doctor`'s alerting checks: Alertmanager answers, Prometheus sends its alerts to it, and no
notification fails, neither from Prometheus to Alertmanager nor from Alertmanager to a receiver.

Each check returns (status, detail, fix hint); doctor.py names the row.
"""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

OK, FAIL = "OK", "FAIL"
COMPOSE = "docker-compose"
Finding = tuple[str, str, str]
# What render.sh routes to when no receiver URL is set (alertmanager/alertmanager.yml).
VIEW_ONLY = "receiver: view-only"
# Prometheus's own counters of alerts it could not hand to Alertmanager.
PROMETHEUS_FAILURES = (
    "prometheus_notifications_errors_total",
    "prometheus_notifications_dropped_total",
)


def _get(client: httpx.Client, url: str, **kwargs: object) -> httpx.Response | str:
    try:
        return client.get(url, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as error:
        return f"unreachable: {error or type(error).__name__}"


def _running_hint() -> str:
    return f"is it running? `{COMPOSE} ps alertmanager`; `{COMPOSE} logs --tail=50 alertmanager`"


def alertmanager_health(alertmanager: str, client: httpx.Client) -> Finding:
    response = _get(client, f"{alertmanager}/-/healthy")
    if isinstance(response, str) or response.status_code != 200:
        detail = response if isinstance(response, str) else f"HTTP {response.status_code}"
        hint = f"{_running_hint()}; a bad receiver URL or config stops it (the log says which): "
        hint += "`amtool check-config alertmanager/alertmanager.yml`"
        return FAIL, detail, hint
    answer = _get(client, f"{alertmanager}/api/v2/status")
    status = answer.json() if not isinstance(answer, str) and answer.status_code == 200 else {}
    version = status.get("versionInfo", {}).get("version", "?")
    if VIEW_ONLY in status.get("config", {}).get("original", ""):
        return OK, f"{version}; no receiver set: alerts are shown, sent to no one", ""
    return OK, f"{version}; receivers configured", ""


def prometheus_sends_alerts(prometheus: str, client: httpx.Client) -> Finding:
    response = _get(client, f"{prometheus}/api/v1/alertmanagers")
    if isinstance(response, str) or response.status_code != 200:
        return FAIL, str(response), f"open {prometheus}/status"
    active = response.json().get("data", {}).get("activeAlertmanagers", [])
    if not active:
        hint = (
            "prometheus/prometheus.yml (each variant) needs the `alerting:` block with target "
            f"alertmanager:9093; then `{COMPOSE} restart prometheus`"
        )
        return FAIL, "Prometheus has no active Alertmanager", hint
    return OK, ", ".join(item["url"] for item in active), ""


def prometheus_notifications(prometheus: str, client: httpx.Client) -> Finding:
    """Alerts Prometheus failed to hand to Alertmanager over the last 5 minutes."""
    failures = " + ".join(f"sum(increase({name}[5m]))" for name in PROMETHEUS_FAILURES)
    response = _get(client, f"{prometheus}/api/v1/query", params={"query": failures})
    if isinstance(response, str) or response.status_code != 200:
        return FAIL, str(response), f"open {prometheus}/graph"
    result = response.json().get("data", {}).get("result", [])
    failed = float(result[0]["value"][1]) if result else 0.0
    if failed > 0:
        hint = (
            "Prometheus cannot reach Alertmanager: see the rows above; "
            f"`{COMPOSE} logs --tail=50 prometheus | grep -i notif`"
        )
        return FAIL, f"{failed:.0f} alert sends failed or dropped in 5 min", hint
    return OK, "no failed or dropped alert sends in 5 min", ""


def _by_integration(text: str, family_name: str) -> dict[str, float]:
    """A counter family's samples summed by their integration label."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == family_name:
            for sample in family.samples:
                if sample.name == f"{family_name}_total":
                    key = sample.labels.get("integration", "")
                    totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def receiver_notifications(alertmanager: str, client: httpx.Client) -> Finding:
    """Requests to receivers that failed, retries included (counted since Alertmanager started;
    a failed request is retried, so a notification can still arrive late)."""
    response = _get(client, f"{alertmanager}/metrics")
    if isinstance(response, str) or response.status_code != 200:
        return FAIL, str(response), _running_hint()
    sent = _by_integration(response.text, "alertmanager_notification_requests")
    failed = _by_integration(response.text, "alertmanager_notification_requests_failed")
    failing = {name: count for name, count in failed.items() if count}
    if failing:
        detail = ", ".join(
            f"{name}: {count:.0f} of {sent.get(name, 0):.0f} requests failed"
            for name, count in sorted(failing.items())
        )
        hint = (
            "a receiver refuses them: check ALERTMANAGER_PAGE_URL / ALERTMANAGER_NOTIFY_URL in "
            f".env and `{COMPOSE} logs --tail=50 alertmanager | grep -i notify`; after a fix, "
            f"`{COMPOSE} up -d alertmanager` (counted since Alertmanager started)"
        )
        return FAIL, f"since start: {detail}", hint
    return OK, f"{sum(sent.values()):.0f} requests since start, none failed", ""
