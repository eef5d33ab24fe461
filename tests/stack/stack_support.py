"""Shared by the stack tests: project paths, required binaries, and the dashboards' queries."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "prometheus"
PROMETHEUS_YML = PROMETHEUS_DIR / "prometheus.yml"
PROVISIONING_DIR = ROOT / "grafana" / "provisioning"
DASHBOARD_DIR = PROVISIONING_DIR / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}

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


def require_binary(name: str) -> str:
    """The binary's path; a missing binary skips the test locally and fails it in CI."""
    path = shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin")
    if path is None:
        message = f"{name} is not installed (Debian package: see the Makefile's test prerequisites)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str

    @property
    def id(self) -> str:
        return f"{self.dashboard}:{self.panel}:{self.ref_id}"


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON of the provisioning folder, by file name."""
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARD_DIR.glob("*.json"))}


def iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Panels, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries() -> list[PanelQuery]:
    return [
        PanelQuery(name, panel["title"], target["refId"], target["expr"])
        for name, dashboard in load_dashboards().items()
        for panel in iter_panels(dashboard)
        for target in panel.get("targets", [])
    ]


def expand(expr: str, dashboard: dict[str, Any]) -> str:
    """The query as Grafana would send it, with every template variable set to "All"."""
    variables = dict(BUILTIN_VARIABLES)
    for variable in dashboard.get("templating", {}).get("list", []):
        variables[variable["name"]] = variable.get("allValue") or ".*"

    def substitute(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in variables:
            raise ValueError(f"unknown variable ${name} in {expr!r}")
        return variables[name]

    return _VARIABLE.sub(substitute, expr)


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard, variable, PromQL) for each label_values() variable, as Grafana resolves it."""
    found = []
    for name, dashboard in load_dashboards().items():
        for variable in dashboard.get("templating", {}).get("list", []):
            match = _LABEL_VALUES.match(variable["definition"])
            if match is None:
                raise ValueError(f"{name}: unsupported variable query {variable['definition']!r}")
            metric, label = match.groups()
            found.append((name, variable["name"], f"count by ({label}) ({metric})"))
    return found
