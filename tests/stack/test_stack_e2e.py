"""The whole monitoring stack as local processes: the real app on PostgreSQL and Redis, the four
exporters, nginx, and a Prometheus running the project's own prometheus.yml and rules.

Only the scrape targets are rewritten (compose service names -> local ports). Every query of
every dashboard panel must return data, the rules must load and evaluate, and stopping the app
must make TargetDown pending.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from stack_support import (
    PROMETHEUS_DIR,
    PROMETHEUS_YML,
    ROOT,
    PanelQuery,
    expand,
    load_dashboards,
    panel_queries,
    require_binary,
    variable_queries,
)

from tests.conftest import require_server
from tests.servers import Processes, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
STARTUP_TIMEOUT = 30.0  # per process
# From the start of Prometheus until every query has data: a 15s-scraped target needs up to
# 5s (discovery) + 15s (first scrape) + 15s for the two samples rate() needs.
DATA_TIMEOUT = 75.0
ALERT_TIMEOUT = 60.0  # one 5s scrape + one 15s evaluation, with slack

EXPORTERS = ("postgres", "redis", "node", "nginx")


def _http_ok(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200


def _wait_http(processes: Processes, name: str, url: str) -> None:
    def ready() -> bool:
        processes.check_alive()
        try:
            return _http_ok(url)
        except httpx.HTTPError:
            return False

    wait_for(ready, STARTUP_TIMEOUT, f"{name} at {url}")


class Traffic(threading.Thread):
    """Memo CRUD, searches, 404s and unmatched paths, half through nginx, until stopped."""

    def __init__(self, *base_urls: str) -> None:
        super().__init__(daemon=True)
        self.clients = [httpx.Client(base_url=url, timeout=5) for url in base_urls]
        self.stopped = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.stopped.is_set():
            client = self.clients[n % len(self.clients)]
            try:
                self._round(client, n)
            except Exception as error:  # reported by the `scraped` fixture, not lost in a thread
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


def _admin_sql(statement: str) -> None:
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


@dataclass(frozen=True)
class Ports:
    app: int
    prometheus: int
    postgres_exporter: int
    redis_exporter: int
    node_exporter: int
    nginx: int
    nginx_exporter: int

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


@dataclass
class Stack:
    prometheus: str
    app: str
    ports: Ports
    processes: Processes
    traffic: Traffic
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


def local_prometheus_config(addresses: dict[str, str]) -> dict[str, Any]:
    """The project's prometheus.yml with its targets mapped to local addresses, nothing else."""
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["rule_files"] = [str(PROMETHEUS_DIR / path) for path in config["rule_files"]]
    for job in config["scrape_configs"]:
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


def _start_servers(processes: Processes, ports: Ports, database: str) -> None:
    """The app, nginx in front of it, and the four exporters, each answering HTTP."""
    server = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    app_env = {
        "DATABASE_URL": f"{server.replace('postgresql:', 'postgresql+asyncpg:')}/{database}",
        "REDIS_URL": REDIS_URL,
    }
    commands = {
        "app": (
            [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1"],
            ["--port", str(ports.app)],
            app_env,
        ),
        "postgres-exporter": (
            [require_binary("prometheus-postgres-exporter")],
            [f"--web.listen-address=127.0.0.1:{ports.postgres_exporter}"],
            {"DATA_SOURCE_NAME": f"{server}/{database}?sslmode=disable"},
        ),
        "redis-exporter": (
            [require_binary("prometheus-redis-exporter"), f"-redis.addr={REDIS_URL}"],
            [f"-web.listen-address=127.0.0.1:{ports.redis_exporter}"],
            {},
        ),
        "node-exporter": (
            [require_binary("prometheus-node-exporter")],
            [f"--web.listen-address=127.0.0.1:{ports.node_exporter}"],
            {},
        ),
        "nginx": (
            [require_binary("nginx"), "-e", "stderr", "-p", str(processes.logs)],
            ["-c", str(_nginx_conf(processes.logs, ports))],
            {},
        ),
    }
    for name, (argv, more, env) in commands.items():
        processes.start(name, [*argv, *more], cwd=ROOT, env={**os.environ, **env})
    nginx = f"http://127.0.0.1:{ports.nginx}"
    _wait_http(processes, "nginx", f"{nginx}/stub_status")
    processes.start(  # it exits at start when stub_status is unreachable
        "nginx-exporter",
        [
            require_binary("prometheus-nginx-exporter"),
            f"-nginx.scrape-uri={nginx}/stub_status",
            f"-web.listen-address=127.0.0.1:{ports.nginx_exporter}",
        ],
    )
    _wait_http(processes, "app", f"http://127.0.0.1:{ports.app}/health")
    for name, address in ports.compose_targets().items():
        if not name.startswith(("fastapi", "prometheus")):
            _wait_http(processes, name, f"http://{address}/metrics")


def _start_prometheus(processes: Processes, ports: Ports) -> str:
    config = processes.logs / "prometheus.yml"
    config.write_text(yaml.safe_dump(local_prometheus_config(ports.compose_targets())))
    address = f"127.0.0.1:{ports.prometheus}"
    processes.start(
        "prometheus",
        [
            require_binary("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={processes.logs / 'tsdb'}",
            f"--web.listen-address={address}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ],
    )
    _wait_http(processes, "prometheus", f"http://{address}/-/ready")
    return f"http://{address}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for binary in ("prometheus", "nginx", *(f"prometheus-{e}-exporter" for e in EXPORTERS)):
        require_binary(binary)  # before anything starts
    require_server("127.0.0.1", 5432, "PostgreSQL")
    require_server("127.0.0.1", 6379, "Redis")
    import redis

    ports = Ports.free()
    processes = Processes(tmp_path_factory.mktemp("stack"))
    database = f"memo_e2e_{uuid.uuid4().hex[:12]}"
    with ExitStack() as cleanup:  # callbacks run last-in first-out, each even if one fails
        _admin_sql(f'CREATE DATABASE "{database}"')
        cleanup.callback(_admin_sql, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        cache = redis.Redis.from_url(REDIS_URL)  # the tests' own database index, see conftest
        cleanup.callback(cache.close)
        cache.flushdb()
        cleanup.callback(cache.flushdb)
        cleanup.callback(processes.stop_all)
        _start_servers(processes, ports, database)
        prometheus = _start_prometheus(processes, ports)
        app = f"http://127.0.0.1:{ports.app}"
        traffic = Traffic(app, f"http://127.0.0.1:{ports.nginx}")
        traffic.start()
        cleanup.callback(traffic.stop)
        yield Stack(prometheus, app, ports, processes, traffic)


@pytest.fixture(scope="module")
def scraped(stack: Stack) -> Stack:
    """The stack once Prometheus sees every target up."""
    stack.data_deadline = time.monotonic() + DATA_TIMEOUT

    def all_up() -> bool:
        targets = stack.api("targets")["activeTargets"]
        expected = len(stack.ports.compose_targets())
        return len(targets) == expected and all(t["health"] == "up" for t in targets)

    wait_for(all_up, stack.time_left(), "every target up")
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
