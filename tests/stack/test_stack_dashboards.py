"""Grafana provisioning: datasource uids, the main dashboard's panels, rate-correct PromQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from stack_support import (
    DASHBOARD_DIR,
    DATASOURCE,
    PROMETHEUS_DIR,
    PROVISIONING_DIR,
    expand,
    iter_panels,
    load_dashboards,
    panel_queries,
)

MAIN_TITLE = "FastAPI Application Metrics"
MAIN_PANELS = [
    "Total Requests per Second",
    "Total Memos",
    "Active Connections",
    "Request Rate",
    "Request Duration (p95 and p50)",
    "Response Status Codes",
    "Requests by Endpoint",
]
DASHBOARDS = load_dashboards()
QUERIES = panel_queries()
RULE_EXPRS = [
    rule["expr"]
    for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
    for group in yaml.safe_load(path.read_text())["groups"]
    for rule in group["rules"]
]
# Metrics the app reports once per instance: the main dashboard must aggregate them like this.
AGGREGATION = {
    "fastapi_requests_total": "sum",
    "fastapi_request_duration_seconds_bucket": "sum",
    "fastapi_active_connections": "sum",
    "memo_total": "max",  # the same DB-wide count from every instance
}
_AGGREGATOR_BEFORE_PAREN = re.compile(r"(\w+)\s*(?:(?:by|without)\s*\([^()]*\)\s*)?$")


def _call_argument(expr: str, open_paren: int) -> str:
    depth = 0
    for i in range(open_paren, len(expr)):
        depth += {"(": 1, ")": -1}.get(expr[i], 0)
        if depth == 0:
            return expr[open_paren + 1 : i]
    raise AssertionError(f"unbalanced parentheses in {expr!r}")


def _enclosing_functions(expr: str, pos: int) -> list[str]:
    """Names of the calls around position pos, innermost first (`sum by (x) (...)` gives sum)."""
    names, depth = [], 0
    for i in range(pos - 1, -1, -1):
        if expr[i] == ")":
            depth += 1
        elif expr[i] == "(":
            if depth == 0:
                match = _AGGREGATOR_BEFORE_PAREN.search(expr[:i])
                names.append(match.group(1) if match else "")
            else:
                depth -= 1
    return names


def test_datasource_has_the_fixed_uid() -> None:
    config = yaml.safe_load((PROVISIONING_DIR / "datasources" / "prometheus.yml").read_text())
    [datasource] = config["datasources"]
    assert datasource["uid"] == DATASOURCE["uid"]
    assert datasource["type"] == DATASOURCE["type"]
    assert datasource["url"] == "http://prometheus:9090"


def test_dashboard_provider_reads_the_mounted_folder() -> None:
    config = yaml.safe_load((DASHBOARD_DIR / "default.yml").read_text())
    [provider] = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/etc/grafana/provisioning/dashboards"


def test_dashboards_have_unique_uids_and_titles() -> None:
    assert len(DASHBOARDS) >= 5  # the app, PostgreSQL, Redis, Nginx, Node
    uids = [d["uid"] for d in DASHBOARDS.values()]
    titles = [d["title"] for d in DASHBOARDS.values()]
    assert all(uids) and len(set(uids)) == len(uids)
    assert all(titles) and len(set(titles)) == len(titles)


@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_reference_uses_the_provisioned_datasource(name: str) -> None:
    dashboard = DASHBOARDS[name]
    assert (
        "${DS_" not in (DASHBOARD_DIR / name).read_text()
    )  # export placeholders break provisioning
    panels = list(iter_panels(dashboard))
    assert len({p["id"] for p in panels}) == len(panels), "duplicate panel ids"
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]
    for variable in dashboard.get("templating", {}).get("list", []):
        assert variable["datasource"] == DATASOURCE, variable["name"]


def test_main_dashboard_has_the_documented_panels() -> None:
    [main] = [d for d in DASHBOARDS.values() if d["title"] == MAIN_TITLE]
    assert DASHBOARDS["fastapi-dashboard.json"] is main
    assert [p["title"] for p in iter_panels(main)] == MAIN_PANELS
    duration = next(p for p in iter_panels(main) if p["title"].startswith("Request Duration"))
    assert [t["legendFormat"] for t in duration["targets"]] == ["p95", "p50"]


@pytest.mark.parametrize("expr", [q.expr for q in QUERIES] + RULE_EXPRS)
def test_histograms_and_averages_are_rate_correct(expr: str) -> None:
    for match in re.finditer(r"histogram_quantile\s*\(", expr):
        argument = _call_argument(expr, match.end() - 1)
        by_le = r"sum\s*by\s*\([^)]*\ble\b[^)]*\)|sum\s*\(.*\)\s*by\s*\([^)]*\ble\b[^)]*\)"
        assert re.search(by_le, argument, re.S), f"histogram_quantile without sum by (le): {expr}"
    for match in re.finditer(r"\b[a-zA-Z_:][\w:]*_(?:sum|count)\b", expr):
        assert _enclosing_functions(expr, match.start())[:1] in (["rate"], ["increase"]), (
            f"{match.group()} used without rate(): a lifetime average in {expr}"
        )


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.id)
def test_dashboard_ranges_follow_grafana(query: Any) -> None:
    windows = re.findall(r"\[([^\]]+)\]", query.expr)
    assert set(windows) <= {"$__rate_interval", "$__range"}, query.expr
    expand(query.expr, DASHBOARDS[query.dashboard])  # no unknown variables


@pytest.mark.parametrize(
    "query", [q for q in QUERIES if q.dashboard == "fastapi-dashboard.json"], ids=lambda q: q.id
)
def test_main_dashboard_aggregates_instances_correctly(query: Any) -> None:
    for metric, aggregation in AGGREGATION.items():
        for match in re.finditer(rf"\b{metric}\b", query.expr):
            aggregations = [
                f for f in _enclosing_functions(query.expr, match.start()) if f in {"sum", "max"}
            ]
            assert aggregations[:1] == [aggregation], (
                f"{metric} needs {aggregation}(): {query.expr}"
            )
