"""Shared by the stack tests: project paths, required binaries, the dashboards' queries, and the
whole monitoring stack as local processes (the `stack` fixture in conftest.py starts it).

The stack: the real app on PostgreSQL and Redis, nginx in front of it, the four exporters, a
Prometheus running the project's own prometheus.yml and rules with only the scrape and alerting
targets rewritten (compose service names -> local ports), and an Alertmanager running the
project's alertmanager.yml as render.sh leaves it without receivers (the development default).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from scripts.dashboards import (  # noqa: F401  (re-exported for the stack tests)
    BUILTIN_VARIABLES,
    PanelQuery,
    expand,
    iter_panels,
    load_dashboards,
    panel_queries,
    variable_queries,
)
from tests.servers import (
    POSTGRES_ADMIN_URL,
    Processes,
    admin_sql,
    free_port,
    require_server,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "prometheus"
PROMETHEUS_YML = PROMETHEUS_DIR / "prometheus.yml"
PROVISIONING_DIR = ROOT / "grafana" / "provisioning"
ALERTMANAGER_DIR = ROOT / "alertmanager"
DASHBOARD_DIR = PROVISIONING_DIR / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}

STACK_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
STARTUP_TIMEOUT = 30.0  # per process
EXPORTERS = ("postgres", "redis", "node", "nginx")


def require_binary(name: str) -> str:
    """The binary's path; a missing binary skips the test locally and fails it in CI."""
    path = shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin")
    if path is None:
        message = f"{name} is not installed (Debian package: see the Makefile's test prerequisites)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def wait_http(processes: Processes, name: str, url: str) -> None:
    """Wait until url answers 200, failing early when the process behind it exits."""

    def ready() -> bool:
        processes.check_alive()
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, STARTUP_TIMEOUT, f"{name} at {url}")


class Traffic(threading.Thread):
    """Memo CRUD, searches, 404s and unmatched paths, half through nginx, until stopped."""

    def __init__(self, *base_urls: str) -> None:
        super().__init__(daemon=True)
        self.base_urls = base_urls
        self.clients = [httpx.Client(base_url=url, timeout=5) for url in base_urls]
        self.stopped = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.stopped.is_set():
            client = self.clients[n % len(self.clients)]
            try:
                self._round(client, n)
            except Exception as error:  # reported by the tests, not lost in a thread
                self.errors.append(repr(error))
            n += 1
            self.stopped.wait(0.1)

    @staticmethod
    def _round(client: httpx.Client, n: int) -> None:
        memo = client.post("/memos/", json={"title": f"memo {n}", "content": "e2e"}).json()
        client.get("/memos/")
        client.get(f"/memos/{memo['id']}")
        client.get(f"/memos/{memo['id']}")  # a cache hit
        client.put(f"/memos/{memo['id']}", json={"title": f"memo {n}!", "content": "e2e"})
        client.get("/memos/search/", params={"q": "memo"})
        client.get("/memos/999999999")
        client.get(f"/no-such-page/{n}")
        if n % 2:
            client.delete(f"/memos/{memo['id']}")

    def stop(self) -> None:
        if not self.stopped.is_set():
            self.stopped.set()
            self.join(timeout=10)
            for client in self.clients:
                client.close()


@dataclass(frozen=True)
class Ports:
    app: int
    prometheus: int
    postgres_exporter: int
    redis_exporter: int
    node_exporter: int
    nginx: int
    nginx_exporter: int
    alertmanager: int

    @classmethod
    def free(cls) -> Ports:
        return cls(*(free_port() for _ in fields(cls)))

    def compose_targets(self) -> dict[str, str]:
        """prometheus.yml's compose addresses -> these local ones."""
        return {
            "fastapi:8000": f"127.0.0.1:{self.app}",
            "prometheus:9090": f"127.0.0.1:{self.prometheus}",
            "postgres-exporter:9187": f"127.0.0.1:{self.postgres_exporter}",
            "redis-exporter:9121": f"127.0.0.1:{self.redis_exporter}",
            "nginx-exporter:9113": f"127.0.0.1:{self.nginx_exporter}",
            "node-exporter:9100": f"127.0.0.1:{self.node_exporter}",
        }


@dataclass(frozen=True)
class Command:
    """How to start one process of the stack, and the URL that answers 200 once it serves."""

    argv: list[str]
    ready: str
    env: dict[str, str] = field(default_factory=dict)


def local_prometheus_config(addresses: dict[str, str], alertmanager: str = "") -> dict[str, Any]:
    """The project's prometheus.yml with its targets mapped to local addresses, nothing else.

    A DNS-discovered job (the app's replicas) becomes a static one here, name:port mapped like
    the others: this stack runs one app. tests/stack/test_replicas.py runs the discovery itself.
    """
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["rule_files"] = [str(PROMETHEUS_DIR / path) for path in config["rule_files"]]
    for manager in config["alerting"]["alertmanagers"]:
        for static in manager["static_configs"]:
            assert static["targets"] == ["alertmanager:9093"], static
            static["targets"] = [alertmanager] if alertmanager else []
    for job in config["scrape_configs"]:
        for discovery in job.pop("dns_sd_configs", []):
            names = [f"{name}:{discovery['port']}" for name in discovery["names"]]
            job.setdefault("static_configs", []).append({"targets": names})
        for static in job["static_configs"]:
            unknown = set(static["targets"]) - addresses.keys()
            assert not unknown, f"prometheus.yml scrapes {unknown}, which this test does not start"
            static["targets"] = [addresses[target] for target in static["targets"]]
    return config


def _nginx_conf(tmp: Path, ports: Ports) -> Path:
    conf = tmp / "nginx.conf"
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf.write_text(
        f"""daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp_paths}
    server {{
        listen 127.0.0.1:{ports.nginx};
        location = /stub_status {{ stub_status; }}
        location / {{ proxy_pass http://127.0.0.1:{ports.app}; }}
    }}
}}
"""
    )
    return conf


def _prometheus_command(logs: Path, ports: Ports) -> Command:
    config = logs / "prometheus.yml"
    alertmanager = f"127.0.0.1:{ports.alertmanager}"
    config.write_text(
        yaml.safe_dump(local_prometheus_config(ports.compose_targets(), alertmanager))
    )
    address = f"127.0.0.1:{ports.prometheus}"
    argv = [require_binary("prometheus"), f"--config.file={config}"]
    argv += [f"--storage.tsdb.path={logs / 'tsdb'}", f"--web.listen-address={address}"]
    argv += ["--web.enable-lifecycle", "--log.level=warn"]
    return Command(argv, f"http://{address}/-/ready")


def stack_commands(logs: Path, ports: Ports, database: str) -> dict[str, Command]:
    """Every process of the stack, in start order (nginx-exporter exits without nginx)."""
    server = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    app_env = {
        "DATABASE_URL": f"{server.replace('postgresql:', 'postgresql+asyncpg:')}/{database}",
        "REDIS_URL": STACK_REDIS_URL,
    }
    stub_status = f"http://127.0.0.1:{ports.nginx}/stub_status"
    app = [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1"]
    nginx = [require_binary("nginx"), "-e", "stderr", "-p", str(logs)]
    return {
        "app": Command([*app, "--port", str(ports.app)], _local(ports.app, "/health"), app_env),
        "postgres-exporter": _exporter(
            "postgres", "--", ports.postgres_exporter, [], f"{server}/{database}?sslmode=disable"
        ),
        "redis-exporter": _exporter(
            "redis", "-", ports.redis_exporter, [f"-redis.addr={STACK_REDIS_URL}"]
        ),
        "node-exporter": _exporter("node", "--", ports.node_exporter, []),
        "nginx": Command([*nginx, "-c", str(_nginx_conf(logs, ports))], stub_status),
        "nginx-exporter": _exporter(
            "nginx", "-", ports.nginx_exporter, [f"-nginx.scrape-uri={stub_status}"]
        ),
        "alertmanager": _alertmanager_command(logs, ports),
        "prometheus": _prometheus_command(logs, ports),
    }


def _alertmanager_command(logs: Path, ports: Ports) -> Command:
    """render.sh as the compose entrypoint runs it, here with no receiver configured."""
    rendered, address = logs / "alertmanager.yml", f"127.0.0.1:{ports.alertmanager}"
    argv = ["sh", str(ALERTMANAGER_DIR / "render.sh"), str(ALERTMANAGER_DIR / "alertmanager.yml")]
    argv += [str(rendered), require_binary("prometheus-alertmanager")]
    argv += [f"--config.file={rendered}", f"--storage.path={logs / 'alertmanager'}"]
    argv += [f"--web.listen-address={address}", "--cluster.listen-address="]
    return Command(
        argv,
        f"http://{address}/-/ready",
        {"ALERTMANAGER_PAGE_URL": "", "ALERTMANAGER_NOTIFY_URL": ""},
    )


def _local(port: int, path: str) -> str:
    return f"http://127.0.0.1:{port}{path}"


def _exporter(kind: str, dashes: str, port: int, args: list[str], dsn: str = "") -> Command:
    """prometheus-KIND-exporter on 127.0.0.1:port (the Debian builds disagree on - or --)."""
    argv = [require_binary(f"prometheus-{kind}-exporter"), *args]
    argv.append(f"{dashes}web.listen-address=127.0.0.1:{port}")
    return Command(argv, _local(port, "/metrics"), {"DATA_SOURCE_NAME": dsn} if dsn else {})


@dataclass
class Stack:
    prometheus: str
    app: str
    ports: Ports
    processes: Processes
    traffic: Traffic
    commands: dict[str, Command] = field(default_factory=dict)
    data_deadline: float = 0.0  # shared by every wait for data, so a broken stack fails fast

    def time_left(self) -> float:
        return max(self.data_deadline - time.monotonic(), 5.0)

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": promql})
        body = response.json()
        assert body["status"] == "success", f"{promql}: {body}"
        return list(body["data"]["result"])

    def api(self, path: str) -> Any:
        response = httpx.get(f"{self.prometheus}/api/v1/{path}", timeout=5)
        response.raise_for_status()
        return response.json()["data"]

    def start(self, *names: str) -> None:
        """Start these processes together, then wait until each serves."""
        for name in names:
            command = self.commands[name]
            self.processes.start(name, command.argv, cwd=ROOT, env={**os.environ, **command.env})
        for name in names:
            wait_http(self.processes, name, self.commands[name].ready)

    def start_traffic(self) -> None:
        self.traffic = Traffic(*self.traffic.base_urls)
        self.traffic.start()

    def ensure_running(self) -> None:
        """Restart whatever a test stopped (same ports, same data), and the traffic."""
        for name in self.commands:
            process = self.processes.running.get(name)
            if process is not None and process.poll() is not None:
                self.processes.running.pop(name)
            if name not in self.processes.running:
                self.start(name)
        if self.traffic.stopped.is_set():
            self.start_traffic()

    @contextmanager
    def stopped(self, *names: str) -> Iterator[None]:
        """These processes stopped (and the traffic, which would fail), restarted afterwards."""
        self.traffic.stop()
        try:
            for name in names:
                self.processes.stop(name)
            yield
        finally:
            self.ensure_running()

    def wait_all_up(self, timeout: float) -> None:
        def all_up() -> bool:
            targets = self.api("targets")["activeTargets"]
            expected = len(self.ports.compose_targets())
            return len(targets) == expected and all(t["health"] == "up" for t in targets)

        wait_for(all_up, timeout, "every target up")


@contextmanager
def running_stack(logs: Path) -> Iterator[Stack]:
    """The whole stack on free ports with its own database and Redis index, torn down after."""
    exporters = (f"prometheus-{e}-exporter" for e in EXPORTERS)
    for binary in ("prometheus", "prometheus-alertmanager", "nginx", *exporters):
        require_binary(binary)  # before anything starts
    require_server("127.0.0.1", 5432, "PostgreSQL")
    require_server("127.0.0.1", 6379, "Redis")
    import redis

    ports = Ports.free()
    processes = Processes(logs)
    database = f"memo_e2e_{uuid.uuid4().hex[:12]}"
    app, nginx = _local(ports.app, ""), _local(ports.nginx, "")
    stack = Stack(_local(ports.prometheus, ""), app, ports, processes, Traffic(app, nginx))
    stack.commands = stack_commands(logs, ports, database)
    with ExitStack() as cleanup:  # callbacks run last-in first-out, each even if one fails
        admin_sql(f'CREATE DATABASE "{database}"')
        cleanup.callback(admin_sql, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        cache = redis.Redis.from_url(STACK_REDIS_URL)  # the stack's own database index
        cleanup.callback(cache.close)
        cache.flushdb()
        cleanup.callback(cache.flushdb)
        cleanup.callback(processes.stop_all)
        stack.start("app", "postgres-exporter", "redis-exporter", "node-exporter", "nginx")
        stack.start("nginx-exporter", "alertmanager")
        stack.start("prometheus")
        stack.traffic.start()
        cleanup.callback(lambda: stack.traffic.stop())  # the traffic running at the end
        yield stack
