#!/usr/bin/env python3
"""`make doctor`: the seed's troubleshooting section, automated.

Walks the stack the way the seed does and prints one row per check, with a fix hint under every
failure; exits 1 when anything fails, 0 otherwise (SKIP does not fail).

- the documented host ports: free, or held by the service that belongs there (and which process);
- the app: /health, and /metrics with the contract's series;
- Prometheus: /-/healthy and the state of every scrape target;
- Grafana: /api/health, the provisioned datasource (uid `prometheus`) and Grafana's own health
  check of it;
- Alertmanager: /-/healthy, Prometheus has it as an active Alertmanager, and no notification
  fails (Prometheus -> Alertmanager over 5 minutes, Alertmanager -> receivers since it started);
- every dashboard panel and variable query (grafana/provisioning/dashboards/*.json), with
  Grafana's variables substituted, run against Prometheus: does it return data?

    python scripts/doctor.py [--app URL] [--prometheus URL] [--grafana URL] [--alertmanager URL]
                             [--port NAME=PORT]
                             [--wait SECONDS] [--json]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

try:
    from scripts import doctor_alerting
    from scripts.dashboards import DASHBOARD_DIR, grafana_queries, load_dashboards
except ModuleNotFoundError:  # run as `python scripts/doctor.py`: scripts/ is on sys.path
    import doctor_alerting  # type: ignore[no-redef]
    from dashboards import DASHBOARD_DIR, grafana_queries, load_dashboards  # type: ignore[no-redef]

# Environment variables (flags win). Defaults are the compose host ports.
ENV_APP_URL = "DOCTOR_APP_URL"
ENV_PROMETHEUS_URL = "DOCTOR_PROMETHEUS_URL"
ENV_GRAFANA_URL = "DOCTOR_GRAFANA_URL"
ENV_ALERTMANAGER_URL = "DOCTOR_ALERTMANAGER_URL"
ENV_STACK = "DOCTOR_STACK"
ENV_GRAFANA_USER = "GRAFANA_ADMIN_USER"
ENV_GRAFANA_PASSWORD = "GRAFANA_ADMIN_PASSWORD"
DEFAULT_URLS = {
    "app": "http://localhost:8000",
    "prometheus": "http://localhost:9090",
    "grafana": "http://localhost:3001",
    "alertmanager": "http://localhost:9093",
}
DATASOURCE_UID = "prometheus"
# What a scrape of the app must show (design.md, "The metric contract"), one series per family.
CONTRACT_SERIES = (
    "fastapi_requests_total",
    "fastapi_request_duration_seconds_bucket",
    "memo_total",
    "fastapi_active_connections",
    "python_gc_objects_collected_total",
    "process_resident_memory_bytes",
)
OK, FAIL, SKIP = "OK", "FAIL", "SKIP"
TIMEOUT = 3.0
PROBE_TIMEOUT = 1.0
PROC = Path("/proc")
# Processes that hold a container's published port on the host (docker's userland proxy,
# rootless docker and podman): a port they hold is the stack's own.
CONTAINER_PROXIES = frozenset(
    {"docker-proxy", "rootlesskit", "rootlessport", "slirp4netns", "pasta", "vpnkit"}
)
STACKS = ("compose", "local")
COMPOSE = "docker-compose"  # the seed's spelling; `docker compose` works the same

Probe = Callable[[str, int, httpx.Client], bool]


@dataclass(frozen=True)
class Row:
    check: str
    status: str
    detail: str
    hint: str = ""


# ---------------------------------------------------------------- what answers on a port


def _url(host: str, port: int, path: str) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}{path}"


def http_probe(path: str, needle: str, *, header: str = "") -> Probe:
    """Recognises a service by a string in a response body (or in one response header)."""

    def probe(host: str, port: int, client: httpx.Client) -> bool:
        response = client.get(_url(host, port, path), timeout=PROBE_TIMEOUT)
        return needle in (response.headers.get(header, "") if header else response.text)

    return probe


def _exchange(host: str, port: int, request: bytes, size: int) -> bytes:
    with socket.create_connection((host, port), timeout=PROBE_TIMEOUT) as connection:
        connection.sendall(request)
        return connection.recv(size)


def postgres_probe(host: str, port: int, client: httpx.Client) -> bool:
    """PostgreSQL answers an SSLRequest with one byte, S or N."""
    return _exchange(host, port, b"\x00\x00\x00\x08\x04\xd2\x16\x2f", 1) in (b"S", b"N")


def redis_probe(host: str, port: int, client: httpx.Client) -> bool:
    return _exchange(host, port, b"PING\r\n", 64).startswith((b"+PONG", b"-NOAUTH"))


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    label: str
    probe: Probe
    published: bool = True  # docker-compose.yml publishes the port on the host


SERVICES = (
    Service("app", 8000, "the app", http_probe("/health", '"services"')),
    Service("prometheus", 9090, "Prometheus", http_probe("/-/healthy", "Prometheus")),
    Service("grafana", 3001, "Grafana", http_probe("/api/health", '"database"')),
    Service("alertmanager", 9093, "Alertmanager", http_probe("/api/v2/status", '"versionInfo"')),
    Service("postgres", 5432, "PostgreSQL", postgres_probe),
    Service("redis", 6381, "Redis", redis_probe),
    Service("nginx", 8080, "nginx", http_probe("/", "nginx", header="server")),
    Service("postgres-exporter", 9187, "postgres-exporter", http_probe("/metrics", "pg_up"), False),
    Service("redis-exporter", 9121, "redis-exporter", http_probe("/metrics", "redis_up"), False),
    Service("nginx-exporter", 9113, "nginx-exporter", http_probe("/metrics", "nginx_up"), False),
    Service(
        "node-exporter",
        9100,
        "node-exporter",
        http_probe("/metrics", "node_exporter_build_info"),
        False,
    ),
)


# ---------------------------------------------------------------- who holds a port (/proc)


@dataclass(frozen=True)
class Listener:
    address: str
    port: int
    inode: int


@dataclass(frozen=True)
class Owner:
    name: str
    pid: int

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid})"


def _decode_address(hex_address: str) -> tuple[str, int]:
    """/proc/net/tcp{,6} `local_address`: the IP in 32-bit host-order words, then the port."""
    hex_ip, hex_port = hex_address.split(":")
    raw = bytes.fromhex(hex_ip)
    ip = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(ip)), int(hex_port, 16)


def read_listeners(proc: Path = PROC) -> list[Listener] | None:
    """Listening TCP sockets of this network namespace; None when /proc/net/tcp is unreadable."""
    if not (proc / "net" / "tcp").is_file():  # not Linux, or /proc not mounted
        return None
    found = []
    try:
        for table in ("tcp", "tcp6"):
            path = proc / "net" / table
            lines = path.read_text().splitlines()[1:] if path.exists() else []
            for fields in (line.split() for line in lines):
                if fields[3] == "0A":  # TCP_LISTEN
                    found.append(Listener(*_decode_address(fields[1]), int(fields[9])))
    except OSError:
        return None
    return found


def _socket_inodes(pid_dir: Path) -> Iterable[int]:
    for fd in (pid_dir / "fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            yield int(target[8:-1])


def _program(pid_dir: Path) -> str:
    """The program's name: argv[0] (comm is cut at 15 characters), with the module or script
    for an interpreter (`python -m uvicorn`)."""
    argv = (pid_dir / "cmdline").read_bytes().split(b"\0")
    name = os.path.basename(argv[0].decode(errors="replace"))
    if not name:  # a kernel thread or a zombie
        return (pid_dir / "comm").read_text().strip()
    if name.startswith("python") and len(argv) > 1:
        name = " ".join([name, *(arg.decode(errors="replace") for arg in argv[1:3] if arg)])
    return name


def socket_owners(inodes: set[int], proc: Path = PROC) -> tuple[dict[int, Owner], bool]:
    """The processes holding these sockets, and whether some processes could not be read."""
    owners: dict[int, Owner] = {}
    hidden = False
    for pid_dir in (p for p in proc.iterdir() if p.name.isdigit()):
        try:
            for inode in set(_socket_inodes(pid_dir)) & inodes:
                owners[inode] = Owner(_program(pid_dir), int(pid_dir.name))
        except PermissionError:
            hidden = True
        except OSError:  # the process exited
            continue
    return owners, hidden


@dataclass
class PortTable:
    """Who listens where, read once per run."""

    listeners: list[Listener] | None
    owners: dict[int, Owner] = field(default_factory=dict)
    hidden: bool = False

    @classmethod
    def read(cls, proc: Path = PROC) -> PortTable:
        listeners = read_listeners(proc)
        if not listeners:
            return cls(listeners)
        return cls(listeners, *socket_owners({item.inode for item in listeners}, proc))

    def holders(self, port: int) -> list[Listener] | None:
        if self.listeners is None:
            return None
        return [item for item in self.listeners if item.port == port]

    def describe(self, held: list[Listener]) -> str:
        unknown = "owner hidden (run as root)" if self.hidden else "owner unknown"
        owners = sorted({str(self.owners.get(item.inode, unknown)) for item in held})
        addresses = sorted({item.address for item in held})
        return f"{', '.join(owners)} on {', '.join(addresses)}"

    def host_process(self, held: list[Listener]) -> bool:
        """Held by a process of this host, not by a container runtime's port proxy."""
        owners = [self.owners.get(item.inode) for item in held]
        known = [owner for owner in owners if owner is not None]
        return bool(known) and all(owner.name not in CONTAINER_PROXIES for owner in known)


def _probe_host(held: list[Listener]) -> str:
    for item in held:
        ip = ipaddress.ip_address(item.address)
        if ip.is_unspecified or ip.is_loopback:
            return "127.0.0.1" if ip.version == 4 else "::1"
    return held[0].address


def _connectable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT).close()
    except OSError:
        return False
    return True


def _answers(service: Service, host: str, port: int, client: httpx.Client) -> bool:
    try:
        return service.probe(host, port, client)
    except (httpx.HTTPError, OSError):
        return False


def _conflict(check: str, detail: str, service: Service, port: int) -> Row:
    hint = (
        f"port conflict: see who holds it with `sudo ss -tlnp | grep :{port}`; stop that "
        f"process or change the host port of `{service.name}` in docker-compose.yml"
    )
    return Row(check, FAIL, detail, hint)


def check_port(
    service: Service, port: int, table: PortTable, client: httpx.Client, stack: str
) -> Row:
    """Free, or held by what belongs there. With compose, a host process (not docker's proxy)
    on a published port is a conflict even when it is the right kind of server."""
    check = f"port {port} ({service.name})"
    held = table.holders(port)
    if held is None:  # no /proc: fall back to connecting
        held = [Listener("127.0.0.1", port, 0)] if _connectable(port) else []
    if not held:
        return Row(check, OK, "free")
    who = table.describe(held)
    answers = _answers(service, _probe_host(held), port, client)
    if stack == "compose" and not service.published:
        what = f"answers as {service.label}" if answers else f"not {service.label}"
        return Row(check, OK, f"{who}; {what}; compose does not publish {port}")
    if stack == "compose" and table.host_process(held):
        detail = f"{who}, a host process: compose cannot publish {port} while it runs"
        return _conflict(check, detail, service, port)
    if answers:
        return Row(check, OK, f"{who}; answers as {service.label}")
    return _conflict(check, f"{who}; does not answer as {service.label}", service, port)


# ---------------------------------------------------------------- HTTP checks


@dataclass(frozen=True)
class Config:
    app: str
    prometheus: str
    grafana: str
    alertmanager: str
    grafana_auth: tuple[str, str]
    dashboards: Path
    ports: dict[str, int]
    stack: str = "compose"


def _get(client: httpx.Client, url: str, **kwargs: Any) -> httpx.Response | str:
    """The response, or why there is none."""
    try:
        return client.get(url, **kwargs)
    except httpx.HTTPError as error:
        return f"unreachable: {error or type(error).__name__}"


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:  # a proxy's error page, or not the service we think
        return {}
    return body if isinstance(body, dict) else {}


def _service_hint(service: str) -> str:
    return f"is it running? `{COMPOSE} ps {service}`; `{COMPOSE} logs --tail=50 {service}`"


def check_app_health(cfg: Config, client: httpx.Client) -> Row:
    response = _get(client, f"{cfg.app}/health")
    if isinstance(response, str):
        return Row("app /health", FAIL, response, _service_hint("fastapi"))
    body = _json(response)
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
    response = _get(client, url)
    if isinstance(response, str):
        return Row("app /metrics", FAIL, response, _service_hint("fastapi"))
    if response.status_code != 200:
        return Row("app /metrics", FAIL, f"HTTP {response.status_code}", hint)
    missing = [name for name in CONTRACT_SERIES if name not in sample_names(response.text)]
    if missing:
        return Row("app /metrics", FAIL, f"missing: {', '.join(missing)}", hint)
    return Row("app /metrics", OK, f"all {len(CONTRACT_SERIES)} contract series present")


def check_prometheus_health(cfg: Config, client: httpx.Client) -> Row:
    response = _get(client, f"{cfg.prometheus}/-/healthy")
    if isinstance(response, str) or response.status_code != 200:
        detail = response if isinstance(response, str) else f"HTTP {response.status_code}"
        hint = _service_hint("prometheus")
        hint += "; a config error stops it: `promtool check config prometheus/prometheus.yml`"
        return Row("prometheus /-/healthy", FAIL, detail, hint)
    return Row("prometheus /-/healthy", OK, response.text.strip())


# Scrape job -> compose service behind it.
JOB_SERVICES = {
    "fastapi": "fastapi",
    "prometheus": "prometheus",
    "postgres": "postgres-exporter",
    "redis": "redis-exporter",
    "nginx": "nginx-exporter",
    "node": "node-exporter",
}


def target_row(cfg: Config, target: dict[str, Any]) -> Row:
    job, instance = target["labels"].get("job", "?"), target["labels"].get("instance", "?")
    check = f"target {job} {instance}"
    if target["health"] == "up":
        return Row(check, OK, f"up, scrape took {target.get('lastScrapeDuration', 0):.3f}s")
    detail = target.get("lastError") or "not scraped yet (wait one scrape interval)"
    hint = f"{_service_hint(JOB_SERVICES.get(job, job))}; details on {cfg.prometheus}/targets"
    if job == "fastapi":
        hint += f"; `curl {cfg.app}/metrics`"
    return Row(check, FAIL, f"{target['health']}: {detail}", hint)


def check_targets(cfg: Config, client: httpx.Client) -> list[Row]:
    response = _get(client, f"{cfg.prometheus}/api/v1/targets", params={"state": "active"})
    if isinstance(response, str) or response.status_code != 200:
        return [Row("prometheus targets", FAIL, str(response), f"open {cfg.prometheus}/targets")]
    targets = _json(response).get("data", {}).get("activeTargets", [])
    if not targets:
        hint = "is prometheus/prometheus.yml mounted at /etc/prometheus? `{} logs prometheus`"
        return [Row("prometheus targets", FAIL, "no active targets", hint.format(COMPOSE))]
    return [target_row(cfg, target) for target in sorted(targets, key=_target_key)]


def _target_key(target: dict[str, Any]) -> tuple[str, str]:
    return target["labels"].get("job", ""), target["labels"].get("instance", "")


def check_grafana_health(cfg: Config, client: httpx.Client) -> Row:
    response = _get(client, f"{cfg.grafana}/api/health")
    if isinstance(response, str) or response.status_code != 200:
        detail = response if isinstance(response, str) else f"HTTP {response.status_code}"
        hint = f"{_service_hint('grafana')}; compose publishes it on host port 3001"
        return Row("grafana /api/health", FAIL, detail, hint)
    body = _json(response)
    return Row("grafana /api/health", OK, f"database {body.get('database')}, {body.get('version')}")


def _datasource_failure(response: httpx.Response | str) -> Row:
    check = f"grafana datasource {DATASOURCE_UID}"
    if isinstance(response, str):
        return Row(check, FAIL, response, _service_hint("grafana"))
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
    response = _get(client, base, auth=cfg.grafana_auth)
    if isinstance(response, str) or response.status_code != 200:
        return _datasource_failure(response)
    datasource = _json(response)
    if datasource.get("type") != "prometheus":
        return Row(check, FAIL, f"type {datasource.get('type')!r}, not prometheus", "")
    detail = f"{datasource.get('type')} at {datasource.get('url')}"
    health = _get(client, f"{base}/health", auth=cfg.grafana_auth)
    if isinstance(health, str) or health.status_code == 404:  # Grafana before 9: no health API
        return Row(check, OK, f"{detail}; health check not available")
    message = _json(health).get("message", "")
    if health.status_code != 200:
        hint = "Grafana cannot reach that URL: is the prometheus service up on the same network?"
        return Row(check, FAIL, f"{detail}: {message}", hint)
    return Row(check, OK, f"{detail}: {message}")


# ---------------------------------------------------------------- dashboards


def has_data(data: dict[str, Any]) -> bool:
    """A query result Grafana would draw: at least one value that is not NaN."""
    if data["resultType"] in ("scalar", "string"):
        return data["result"][1] not in ("NaN", "")
    values = [item["value"][1] for item in data["result"] if "value" in item]
    values += [value for item in data["result"] for _, value in item.get("values", [])]
    return any(not math.isnan(float(value)) for value in values)


def _query_ok(cfg: Config, client: httpx.Client, promql: str) -> bool | str:
    response = _get(client, f"{cfg.prometheus}/api/v1/query", params={"query": promql})
    if isinstance(response, str):
        return response
    body = _json(response)
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


# ---------------------------------------------------------------- alerting


def check_alerting(cfg: Config, client: httpx.Client, prometheus_ok: bool) -> list[Row]:
    """Alertmanager healthy, Prometheus sending to it, no notification failing."""
    health = Row(
        "alertmanager /-/healthy", *doctor_alerting.alertmanager_health(cfg.alertmanager, client)
    )
    rows = [health]
    if prometheus_ok:
        sends = Row(
            "prometheus -> alertmanager",
            *doctor_alerting.prometheus_sends_alerts(cfg.prometheus, client),
        )
        rows.append(sends)
        if sends.status == OK:
            found = doctor_alerting.prometheus_notifications(cfg.prometheus, client)
            rows.append(Row("prometheus notifications", *found))
    if health.status == OK:
        found = doctor_alerting.receiver_notifications(cfg.alertmanager, client)
        rows.append(Row("alertmanager notifications", *found))
    else:
        rows.append(Row("alertmanager notifications", SKIP, "Alertmanager unreachable"))
    return rows


# ---------------------------------------------------------------- running and reporting


def run_checks(cfg: Config) -> list[Row]:
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
        table = PortTable.read()
        rows = [check_port(s, cfg.ports[s.name], table, client, cfg.stack) for s in SERVICES]
        rows += [check_app_health(cfg, client), check_app_metrics(cfg, client)]
        rows.append(check_prometheus_health(cfg, client))
        prometheus_ok = rows[-1].status == OK
        if prometheus_ok:
            rows += check_targets(cfg, client) + check_dashboards(cfg, client)
        else:
            rows.append(Row("targets and dashboards", SKIP, "Prometheus is unreachable"))
        rows.append(check_grafana_health(cfg, client))
        if rows[-1].status == OK:
            rows.append(check_datasource(cfg, client))
        else:
            rows.append(Row(f"grafana datasource {DATASOURCE_UID}", SKIP, "Grafana unreachable"))
        rows += check_alerting(cfg, client, prometheus_ok)
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
    overrides = {}
    for value in values:
        name, _, port = value.partition("=")
        if name not in {service.name for service in SERVICES} or not port.isdigit():
            names = ", ".join(service.name for service in SERVICES)
            raise SystemExit(f"--port {value!r}: expected NAME=PORT with NAME one of {names}")
        overrides[name] = int(port)
    return overrides


def _url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def parse_args(argv: list[str] | None = None) -> tuple[Config, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env = {
        "app": ENV_APP_URL,
        "prometheus": ENV_PROMETHEUS_URL,
        "grafana": ENV_GRAFANA_URL,
        "alertmanager": ENV_ALERTMANAGER_URL,
    }
    for name, variable in env.items():
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
    args = parser.parse_args(argv)
    urls = {name: getattr(args, name).rstrip("/") for name in env}
    ports = {service.name: service.port for service in SERVICES}
    ports |= {name: _url_port(url) for name, url in urls.items()}
    ports |= _port_overrides(args.port)
    auth = (
        os.environ.get(ENV_GRAFANA_USER, "admin"),
        os.environ.get(ENV_GRAFANA_PASSWORD, "admin"),
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


if __name__ == "__main__":
    sys.exit(main())
