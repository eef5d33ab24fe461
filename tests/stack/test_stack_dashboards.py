"""Grafana provisioning: datasource uids and links, the main dashboard's panels and exemplars,
rate-correct PromQL."""

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
DATASOURCE_DIR = PROVISIONING_DIR / "datasources"
TEMPO = {"type": "tempo", "uid": "tempo"}
# The exemplar label with the trace id, as the app writes it on every export path (OpenMetrics
# exposition, OTLP through the collector, remote write).
TRACE_ID_LABEL = "trace_id"
LATENCY_PANEL = "Request Duration (p95 and p50)"
# Span attribute or resource attribute -> the label of the contract series that carries it.
SPAN_TO_LABEL = {"service.name": "job", "http.route": "endpoint", "http.request.method": "method"}
# "Metrics for this span" queries of the Tempo datasource.
TRACE_LINK_EXPRS = [
    query["query"]
    for datasource in yaml.safe_load((DATASOURCE_DIR / "tempo.yml").read_text())["datasources"]
    for query in datasource["jsonData"]["tracesToMetrics"]["queries"]
]
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


def _datasource(file_name: str) -> dict[str, Any]:
    datasource = yaml.safe_load((DATASOURCE_DIR / file_name).read_text())["datasources"][0]
    assert isinstance(datasource, dict)
    return datasource


def test_datasource_has_the_fixed_uid() -> None:
    datasource = _datasource("prometheus.yml")
    assert datasource["uid"] == DATASOURCE["uid"]
    assert datasource["type"] == DATASOURCE["type"]
    assert datasource["url"] == "http://prometheus:9090"


def test_datasources_have_unique_uids_and_one_default() -> None:
    datasources = [
        datasource
        for path in sorted(DATASOURCE_DIR.glob("*.yml"))
        for datasource in yaml.safe_load(path.read_text())["datasources"]
    ]
    uids = [datasource["uid"] for datasource in datasources]
    # P1809F7CD0C75ACF3: the club's uid for the same Prometheus (test_club_dashboards.py).
    assert sorted(uids) == sorted({DATASOURCE["uid"], TEMPO["uid"], "P1809F7CD0C75ACF3"})
    assert [d["uid"] for d in datasources if d.get("isDefault")] == [DATASOURCE["uid"]]
    assert all(d["editable"] is False for d in datasources)


def test_tempo_datasource_has_the_fixed_uid() -> None:
    datasource = _datasource("tempo.yml")
    assert datasource["uid"] == TEMPO["uid"]
    assert datasource["type"] == TEMPO["type"]
    assert datasource["url"] == "http://tempo:3200"  # the port: tests/test_collector.py


def test_exemplar_trace_ids_link_to_tempo() -> None:
    destinations = _datasource("prometheus.yml")["jsonData"]["exemplarTraceIdDestinations"]
    assert destinations == [{"name": TRACE_ID_LABEL, "datasourceUid": TEMPO["uid"]}]


def test_traces_link_back_to_the_route_metrics() -> None:
    links = _datasource("tempo.yml")["jsonData"]["tracesToMetrics"]
    assert links["datasourceUid"] == DATASOURCE["uid"]
    assert {tag["key"]: tag["value"] for tag in links["tags"]} == SPAN_TO_LABEL
    assert links["queries"]
    for query in links["queries"]:
        assert query["name"]
        assert "{$__tags}" in query["query"], query
        # Grafana puts the span's tags in the braces; rate-correct: see the test below.
        assert re.search(
            r"\b(fastapi_request_duration_seconds_bucket|fastapi_requests_total)\{", query["query"]
        )


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
    duration = next(p for p in iter_panels(main) if p["title"] == LATENCY_PANEL)
    assert [t["legendFormat"] for t in duration["targets"]] == ["p95", "p50"]


def test_latency_panel_shows_exemplars() -> None:
    main = DASHBOARDS["fastapi-dashboard.json"]
    [duration] = [p for p in iter_panels(main) if p["title"] == LATENCY_PANEL]
    assert [t.get("exemplar") for t in duration["targets"]] == [True, True]


@pytest.mark.parametrize("name", DASHBOARDS)
def test_exemplars_only_where_the_histogram_has_them(name: str) -> None:
    # Only fastapi_request_duration_seconds carries exemplars; elsewhere the flag only costs
    # Grafana an extra query per refresh.
    for panel in iter_panels(DASHBOARDS[name]):
        for target in panel["targets"]:
            if target.get("exemplar"):
                assert "fastapi_request_duration_seconds_bucket" in target["expr"], panel["title"]


@pytest.mark.parametrize("expr", [q.expr for q in QUERIES] + RULE_EXPRS + TRACE_LINK_EXPRS)
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
