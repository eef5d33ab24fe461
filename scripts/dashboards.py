"""The provisioned dashboards' PromQL as Grafana sends it: panel queries, template variables, and
Grafana's built-in variables substituted. Used by `scripts/doctor/` and the stack tests.

Stdlib only, nothing happens at import time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "grafana" / "provisioning" / "dashboards"

# What Grafana substitutes for its built-in variables on a short range with a 15s scrape interval.
BUILTIN_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^label_values\((.+),\s*(\w+)\)$")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str

    @property
    def id(self) -> str:
        return f"{self.dashboard}:{self.panel}:{self.ref_id}"


def load_dashboards(directory: Path = DASHBOARD_DIR) -> dict[str, dict[str, Any]]:
    """Every dashboard JSON of the provisioning folder, by file name."""
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Panels, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(directory: Path = DASHBOARD_DIR) -> list[PanelQuery]:
    return [
        PanelQuery(name, panel["title"], target["refId"], target["expr"])
        for name, dashboard in load_dashboards(directory).items()
        for panel in iter_panels(dashboard)
        for target in panel.get("targets", [])
    ]


def expand(expr: str, dashboard: dict[str, Any]) -> str:
    """The query as Grafana would send it, with every template variable set to "All"."""
    variables = dict(BUILTIN_VARIABLES)
    for variable in template_variables(dashboard):
        variables[variable["name"]] = variable.get("allValue") or ".*"

    def substitute(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in variables:
            raise ValueError(f"unknown variable ${name} in {expr!r}")
        return variables[name]

    return _VARIABLE.sub(substitute, expr)


def template_variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard.get("templating", {}).get("list", []))


def variable_query(variable: dict[str, Any]) -> str:
    """The PromQL behind a label_values() variable: its values are the result's label values."""
    match = _LABEL_VALUES.match(variable["definition"])
    if match is None:
        raise ValueError(f"unsupported variable query {variable['definition']!r}")
    metric, label = match.groups()
    return f"count by ({label}) ({metric})"


def variable_queries(directory: Path = DASHBOARD_DIR) -> list[tuple[str, str, str]]:
    """(dashboard, variable, PromQL) for each label_values() variable, as Grafana resolves it."""
    return [
        (name, variable["name"], variable_query(variable))
        for name, dashboard in load_dashboards(directory).items()
        for variable in template_variables(dashboard)
    ]


def grafana_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, PromQL as Grafana sends it) for every panel target and template variable."""
    queries = [
        (f"{panel['title']} ({target['refId']})", expand(target["expr"], dashboard))
        for panel in iter_panels(dashboard)
        for target in panel.get("targets", [])
    ]
    variables = template_variables(dashboard)
    return queries + [(f"${v['name']}", variable_query(v)) for v in variables]
