"""The doctor's command line: the list of checks, running them, and the report.

    python -m scripts.doctor [--app URL] [--prometheus URL] [--grafana URL] [--port NAME=PORT]
                             [--stack compose|local] [--wait SECONDS] [--json]

A new check is one entry in CHECKS: a function of (Config, httpx.Client) that returns a Row or a
list of rows, and optionally the name of a check that must pass first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from scripts.dashboards import DASHBOARD_DIR
from scripts.doctor import dashboard_checks, port_checks, service_checks
from scripts.doctor.rows import FAIL, OK, SKIP, Config, Row

# Environment variables (flags win). Defaults are the compose host ports.
ENV_URLS = {
    "app": "DOCTOR_APP_URL",
    "prometheus": "DOCTOR_PROMETHEUS_URL",
    "grafana": "DOCTOR_GRAFANA_URL",
}
ENV_STACK = "DOCTOR_STACK"
DEFAULT_URLS = {
    "app": "http://localhost:8000",
    "prometheus": "http://localhost:9090",
    "grafana": "http://localhost:3001",
}
STACKS = ("compose", "local")
TIMEOUT = 3.0


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Config, httpx.Client], Row | list[Row]]
    needs: str = ""  # the check whose rows must all pass first; SKIP otherwise


CHECKS = (
    Check("ports", port_checks.check_ports),
    Check("app /health", service_checks.check_app_health),
    # After /health: that request is what puts fastapi_requests_total on a fresh app.
    Check("app /metrics", service_checks.check_app_metrics),
    Check("prometheus /-/healthy", service_checks.check_prometheus_health),
    Check("prometheus targets", service_checks.check_targets, needs="prometheus /-/healthy"),
    Check("dashboards", dashboard_checks.check_dashboards, needs="prometheus /-/healthy"),
    Check("grafana /api/health", service_checks.check_grafana_health),
    Check(
        f"grafana datasource {service_checks.DATASOURCE_UID}",
        service_checks.check_datasource,
        needs="grafana /api/health",
    ),
)


def run_checks(cfg: Config, checks: tuple[Check, ...] = CHECKS) -> list[Row]:
    rows: list[Row] = []
    passed: dict[str, bool] = {}
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
        for check in checks:
            if check.needs and not passed[check.needs]:
                rows.append(Row(check.name, SKIP, f"{check.needs} did not pass"))
                passed[check.name] = False
                continue
            result = check.run(cfg, client)
            found = result if isinstance(result, list) else [result]
            passed[check.name] = all(row.status == OK for row in found)
            rows += found
    return rows


def _shorten(text: str, width: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render(rows: list[Row]) -> str:
    width = max(len(row.check) for row in rows)
    lines = [f"{'CHECK':<{width}}  STATUS  DETAIL"]
    for row in rows:
        lines.append(f"{row.check:<{width}}  {row.status:<6}  {_shorten(row.detail)}")
        if row.hint and row.status == FAIL:
            lines.append(f"{'':<{width}}          fix: {row.hint}")
    counts = {status: sum(row.status == status for row in rows) for status in (OK, FAIL, SKIP)}
    lines.append(f"\n{len(rows)} checks: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)


def _port_overrides(values: list[str]) -> dict[str, int]:
    names = [service.name for service in port_checks.SERVICES]
    overrides = {}
    for value in values:
        name, _, port = value.partition("=")
        if name not in names or not port.isdigit():
            raise SystemExit(f"--port {value!r}: expected NAME=PORT with NAME one of {names}")
        overrides[name] = int(port)
    return overrides


def _url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.doctor", description="Check the running stack."
    )
    for name, variable in ENV_URLS.items():
        default = os.environ.get(variable, DEFAULT_URLS[name])
        parser.add_argument(f"--{name}", default=default, help=f"env {variable}, {default}")
    stack = os.environ.get(ENV_STACK, "compose")
    parser.add_argument(
        "--stack",
        choices=STACKS,
        default=stack,
        help=f"env {ENV_STACK}, {stack}: compose (ports held by docker) or local processes",
    )
    parser.add_argument("--dashboards", type=Path, default=DASHBOARD_DIR)
    parser.add_argument("--port", action="append", default=[], metavar="NAME=PORT")
    parser.add_argument("--wait", type=float, default=0, metavar="SECONDS")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[Config, argparse.Namespace]:
    args = _parser().parse_args(argv)
    urls = {name: getattr(args, name).rstrip("/") for name in ENV_URLS}
    ports = {service.name: service.port for service in port_checks.SERVICES}
    ports |= {name: _url_port(url) for name, url in urls.items()}
    ports |= _port_overrides(args.port)
    auth = (
        os.environ.get(service_checks.ENV_GRAFANA_USER, "admin"),
        os.environ.get(service_checks.ENV_GRAFANA_PASSWORD, "admin"),
    )
    config = Config(
        **urls, grafana_auth=auth, dashboards=args.dashboards, ports=ports, stack=args.stack
    )
    return config, args


def main(argv: list[str] | None = None) -> int:
    cfg, args = parse_args(argv)
    deadline = time.monotonic() + args.wait
    if args.wait:
        print(f"doctor: waiting up to {args.wait:.0f}s for every check to pass", file=sys.stderr)
    rows = run_checks(cfg)
    while any(row.status == FAIL for row in rows) and time.monotonic() < deadline:
        time.sleep(2)
        rows = run_checks(cfg)
    print(json.dumps([asdict(row) for row in rows], indent=1) if args.json else render(rows))
    return 1 if any(row.status == FAIL for row in rows) else 0
