"""The whole monitoring stack as local processes: the real app on PostgreSQL and Redis, the four
exporters, nginx, and a Prometheus running the project's own prometheus.yml and rules.

Only the scrape targets are rewritten (compose service names -> local ports). Every query of
every dashboard panel must return data, the rules must load and evaluate, and stopping the app
must make TargetDown pending. The stack itself (`stack`, session-wide) is in conftest.py and
stack_support.py; test_doctor.py runs against the same one.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from stack_support import (
    PROMETHEUS_DIR,
    PanelQuery,
    Stack,
    expand,
    load_dashboards,
    panel_queries,
    variable_queries,
)

from tests.servers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

# From the start of Prometheus until every query has data: a 15s-scraped target needs up to
# 5s (discovery) + 15s (first scrape) + 15s for the two samples rate() needs.
DATA_TIMEOUT = 75.0
ALERT_TIMEOUT = 60.0  # one 5s scrape + one 15s evaluation, with slack
CLUB_DASHBOARDS = Path(__file__).parent / "club"


@pytest.fixture(scope="module")
def scraped(stack: Stack) -> Stack:
    """The stack once Prometheus sees every target up."""
    stack.ensure_running()  # another module may have stopped a part
    stack.data_deadline = time.monotonic() + DATA_TIMEOUT
    stack.wait_all_up(stack.time_left())
    assert stack.traffic.errors == [], stack.traffic.errors[:3]
    return stack


def _has_data(result: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(float(series["value"][1])) for series in result)


def test_every_target_is_up(scraped: Stack) -> None:
    jobs = {t["labels"]["job"] for t in scraped.api("targets")["activeTargets"]}
    assert jobs == {"fastapi", "prometheus", "postgres", "redis", "nginx", "node"}


@pytest.mark.parametrize("query", panel_queries(), ids=lambda q: q.id)
def test_panel_query_returns_data(scraped: Stack, query: PanelQuery) -> None:
    promql = expand(query.expr, load_dashboards()[query.dashboard])
    wait_for(lambda: _has_data(scraped.query(promql)), scraped.time_left(), promql)


@pytest.mark.parametrize("query", panel_queries(CLUB_DASHBOARDS), ids=lambda q: q.id)
def test_club_dashboard_query_returns_data(scraped: Stack, query: PanelQuery) -> None:
    """The club's dashboard, written its way (tests/stack/club/), unchanged on our metrics."""
    promql = expand(query.expr, load_dashboards(CLUB_DASHBOARDS)[query.dashboard])
    wait_for(lambda: _has_data(scraped.query(promql)), scraped.time_left(), promql)


@pytest.mark.parametrize(
    ("dashboard", "variable", "promql"),
    variable_queries(),
    ids=[f"{dashboard}:{variable}" for dashboard, variable, _ in variable_queries()],
)
def test_template_variable_has_values(
    scraped: Stack, dashboard: str, variable: str, promql: str
) -> None:
    assert wait_for(lambda: scraped.query(promql), scraped.time_left(), f"{dashboard} ${variable}")


def test_rules_load_and_evaluate(scraped: Stack) -> None:
    expected = {
        (group["name"], rule.get("alert") or rule["record"])
        for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }

    def evaluated() -> list[dict[str, Any]] | None:
        groups = scraped.api("rules")["groups"]
        rules = [dict(rule, group=g["name"]) for g in groups for rule in g["rules"]]
        return rules if all(r["health"] != "unknown" for r in rules) else None

    rules = wait_for(evaluated, scraped.time_left(), "every rule evaluated")
    assert {(r["group"], r["name"]) for r in rules} == expected
    assert [r for r in rules if r["health"] != "ok"] == []
    for record in [r["name"] for r in rules if r["type"] == "recording"]:
        wait_for(lambda n=record: _has_data(scraped.query(n)), scraped.time_left(), record)


def test_target_down_alert_when_the_app_stops(scraped: Stack) -> None:
    """Runs last: it stops the app."""

    def app_alerts() -> list[dict[str, Any]]:
        alerts = scraped.api("alerts")["alerts"]
        return [
            a
            for a in alerts
            if a["labels"]["alertname"] == "TargetDown" and a["labels"]["job"] == "fastapi"
        ]

    wait_for(lambda: not app_alerts(), scraped.time_left(), "no TargetDown for the running app")
    scraped.traffic.stop()
    scraped.processes.stop("app")
    [alert] = wait_for(app_alerts, ALERT_TIMEOUT, "TargetDown for the stopped app")
    assert alert["state"] in {"pending", "firing"}
    assert alert["labels"]["instance"] == scraped.app.removeprefix("http://")
