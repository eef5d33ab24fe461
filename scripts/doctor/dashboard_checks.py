"""Every provisioned dashboard's queries, as Grafana sends them, run against Prometheus."""

from __future__ import annotations

import math
from typing import Any

import httpx

from scripts.dashboards import grafana_queries, load_dashboards
from scripts.doctor.rows import FAIL, OK, Config, Row, get, json_body


def has_data(data: dict[str, Any]) -> bool:
    """A query result Grafana would draw: at least one value that is not NaN."""
    if data["resultType"] in ("scalar", "string"):
        return data["result"][1] not in ("NaN", "")
    values = [item["value"][1] for item in data["result"] if "value" in item]
    values += [value for item in data["result"] for _, value in item.get("values", [])]
    return any(not math.isnan(float(value)) for value in values)


def _query_ok(cfg: Config, client: httpx.Client, promql: str) -> bool | str:
    response = get(client, f"{cfg.prometheus}/api/v1/query", params={"query": promql})
    if isinstance(response, str):
        return response
    body = json_body(response)
    if body.get("status") != "success":
        return f"error: {body.get('error') or f'HTTP {response.status_code}'}"
    return has_data(body["data"])


def check_dashboard(cfg: Config, client: httpx.Client, dashboard: dict[str, Any]) -> Row:
    check = f"dashboard {dashboard.get('title')!r}"
    try:
        queries = grafana_queries(dashboard)
    except (KeyError, ValueError) as error:
        return Row(check, FAIL, f"cannot read its queries: {error!r}", "")
    results = {what: _query_ok(cfg, client, promql) for what, promql in queries}
    empty = [
        what if ok is False else f"{what}: {ok}" for what, ok in results.items() if ok is not True
    ]
    if not empty:
        return Row(check, OK, f"all {len(queries)} queries return data")
    hint = (
        "Prometheus has no samples for these: check the targets above, then run the panel's "
        f"query on {cfg.prometheus}/graph; right after a start rate() needs two scrapes (35 s)"
    )
    return Row(check, FAIL, f"no data: {'; '.join(empty)}", hint)


def check_dashboards(cfg: Config, client: httpx.Client) -> list[Row]:
    try:
        dashboards = load_dashboards(cfg.dashboards)
    except (OSError, ValueError) as error:
        return [Row("dashboards", FAIL, f"cannot read {cfg.dashboards}: {error}", "")]
    if not dashboards:
        return [Row("dashboards", FAIL, f"no *.json in {cfg.dashboards}", "")]
    return [check_dashboard(cfg, client, dashboard) for dashboard in dashboards.values()]
