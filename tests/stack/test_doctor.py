"""`scripts/doctor/` (`make doctor`) against the local stack of conftest.py: the real app,
Prometheus, exporters and nginx, healthy and with parts stopped.

Grafana cannot be installed here, so `GrafanaStandIn` (a test double, not Grafana) answers the
three calls the doctor makes: /api/health, the datasource by uid, and the datasource's health,
which it answers by querying the real Prometheus the way Grafana's check does.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from stack_support import ROOT, Stack

from scripts.doctor import cli
from scripts.doctor.dashboard_checks import has_data
from scripts.doctor.port_checks import SERVICES, check_port
from scripts.doctor.rows import FAIL, OK, SKIP, Config, Row
from scripts.doctor.service_checks import sample_names
from scripts.doctor.sockets import Listener, Owner, PortTable
from tests.conftest import require_server
from tests.servers import free_port, wait_for

DATA_TIMEOUT = 75  # as test_stack_e2e: until every 15s-scraped panel query has data
GRAFANA_LOGIN = ("doctor", "s3cret")


def stack_test(test: Any) -> Any:
    """Marks of a test that needs the stack (the /proc and parsing tests below need nothing)."""
    return pytest.mark.e2e(pytest.mark.postgres(pytest.mark.redis(test)))


class GrafanaStandIn(BaseHTTPRequestHandler):
    """Grafana's health, datasource and datasource-health API, for one Prometheus."""

    prometheus = ""

    def do_GET(self) -> None:
        if self.path == "/api/health":
            return self._json(200, {"database": "ok", "version": "stand-in"})
        expected = base64.b64encode(":".join(GRAFANA_LOGIN).encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            return self._json(401, {"message": "Unauthorized"})
        if self.path == "/api/datasources/uid/prometheus":
            datasource = {"uid": "prometheus", "type": "prometheus", "url": self.prometheus}
            return self._json(200, datasource)
        if self.path == "/api/datasources/uid/prometheus/health":
            return self._datasource_health()
        return self._json(404, {"message": "Data source not found"})

    def _datasource_health(self) -> None:
        try:
            httpx.get(f"{self.prometheus}/api/v1/query", params={"query": "1+1"}).raise_for_status()
        except httpx.HTTPError as error:
            return self._json(400, {"status": "ERROR", "message": str(error)})
        return self._json(200, {"status": "OK", "message": "Successfully queried the API."})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def grafana(stack: Stack) -> Iterator[str]:
    handler = type("Handler", (GrafanaStandIn,), {"prometheus": stack.prometheus})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    login = dict(zip(("GRAFANA_ADMIN_USER", "GRAFANA_ADMIN_PASSWORD"), GRAFANA_LOGIN, strict=True))
    return subprocess.run(
        [sys.executable, "-m", "scripts.doctor", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DATA_TIMEOUT + 30,
        env={**os.environ, **login, **(env or {})},
        check=False,
    )


def stack_args(stack: Stack, grafana: str) -> list[str]:
    """The doctor pointed at this stack: its URLs, and its ports instead of the compose ones."""
    ports = {
        "nginx": stack.ports.nginx,
        "redis": 6379,  # the CI Redis the app uses
        "postgres-exporter": stack.ports.postgres_exporter,
        "redis-exporter": stack.ports.redis_exporter,
        "nginx-exporter": stack.ports.nginx_exporter,
        "node-exporter": stack.ports.node_exporter,
    }
    args = ["--stack", "local", "--app", stack.app, "--prometheus", stack.prometheus]
    args += ["--grafana", grafana, "--alertmanager", f"http://127.0.0.1:{stack.ports.alertmanager}"]
    return args + [f"--port={name}={port}" for name, port in ports.items()]


def rows_of(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, str]]:
    return {row["check"]: row for row in json.loads(result.stdout)}


def _instance(url: str) -> str:
    return url.removeprefix("http://")


@stack_test
def test_healthy_stack_every_row_ok(healthy_stack: Stack, grafana: str) -> None:
    args = stack_args(healthy_stack, grafana)
    result = run_doctor(*args, "--wait", str(DATA_TIMEOUT), "--json")
    rows = rows_of(result)
    assert [row for row in rows.values() if row["status"] != "OK"] == [], result.stderr
    assert result.returncode == 0
    targets = {name for name in rows if name.startswith("target ")}
    assert f"target fastapi {_instance(healthy_stack.app)}" in targets
    assert len(targets) == len(healthy_stack.ports.compose_targets())
    assert len([name for name in rows if name.startswith("dashboard ")]) == 5
    assert len([name for name in rows if name.startswith("port ")]) == len(SERVICES)
    app_port = rows[f"port {healthy_stack.ports.app} (app)"]["detail"]
    assert "python -m uvicorn (pid" in app_port and "answers as the app" in app_port
    assert (
        "prometheus (pid" in rows[f"port {healthy_stack.ports.prometheus} (prometheus)"]["detail"]
    )
    table = run_doctor(*args)
    assert table.returncode == 0, table.stdout
    assert "0 FAIL" in table.stdout and "fix:" not in table.stdout


@stack_test
def test_stopped_app_and_exporter_fail_with_hints(healthy_stack: Stack, grafana: str) -> None:
    app = _instance(healthy_stack.app)
    redis_exporter = f"127.0.0.1:{healthy_stack.ports.redis_exporter}"
    healthy_stack.wait_all_up(DATA_TIMEOUT)
    with healthy_stack.stopped("app", "redis-exporter"):
        wait_for(lambda: _down(healthy_stack) >= {app, redis_exporter}, 30, "both targets down")
        result = run_doctor(*stack_args(healthy_stack, grafana), "--json")
        table = run_doctor(*stack_args(healthy_stack, grafana))
    rows = rows_of(result)
    failed = {name for name, row in rows.items() if row["status"] == "FAIL"}
    assert failed == {
        "app /health",
        "app /metrics",
        f"target fastapi {app}",
        f"target redis {redis_exporter}",
        "dashboard 'FastAPI Application Metrics'",
        "dashboard 'Redis'",
    }
    assert result.returncode == table.returncode == 1
    assert "docker-compose ps fastapi" in rows["app /health"]["hint"]
    assert f"curl {healthy_stack.app}/metrics" in rows[f"target fastapi {app}"]["hint"]
    assert "docker-compose ps redis-exporter" in rows[f"target redis {redis_exporter}"]["hint"]
    assert "Total Memos" in rows["dashboard 'FastAPI Application Metrics'"]["detail"]
    assert "/graph" in rows["dashboard 'Redis'"]["hint"]
    assert rows[f"port {healthy_stack.ports.app} (app)"] == {
        "check": f"port {healthy_stack.ports.app} (app)",
        "status": "OK",
        "detail": "free",
        "hint": "",
    }
    assert table.stdout.count("fix:") == len(failed)
    assert "6 FAIL" in table.stdout


@stack_test
def test_healthy_stack_reports_alerting(healthy_stack: Stack, grafana: str) -> None:
    rows = rows_of(run_doctor(*stack_args(healthy_stack, grafana), "--json"))
    alertmanager = f"http://127.0.0.1:{healthy_stack.ports.alertmanager}"
    assert rows["prometheus -> alertmanager"]["detail"] == f"{alertmanager}/api/v2/alerts"
    # The stack's Alertmanager runs as development does without .env: no receiver.
    assert "no receiver set" in rows["alertmanager /-/healthy"]["detail"]
    for check in ("prometheus notifications", "alertmanager notifications"):
        assert rows[check]["status"] == "OK", rows[check]


@stack_test
def test_stopped_alertmanager_fails_with_a_hint(healthy_stack: Stack, grafana: str) -> None:
    with healthy_stack.stopped("alertmanager"):
        rows = rows_of(run_doctor(*stack_args(healthy_stack, grafana), "--json"))
    health = rows["alertmanager /-/healthy"]
    assert health["status"] == "FAIL" and health["detail"].startswith("unreachable")
    assert "docker-compose ps alertmanager" in health["hint"]
    assert "amtool check-config" in health["hint"]
    assert rows["alertmanager notifications"]["status"] == "SKIP"


def _down(stack: Stack) -> set[str]:
    targets = stack.api("targets")["activeTargets"]
    return {t["labels"]["instance"] for t in targets if t["health"] == "down"}


@stack_test
def test_grafana_unreachable_or_refusing_the_login(stack: Stack, grafana: str) -> None:
    args = stack_args(stack, grafana)
    nowhere = f"http://127.0.0.1:{free_port()}"
    rows = rows_of(run_doctor(*args, "--grafana", nowhere, "--json"))
    assert rows["grafana /api/health"]["status"] == "FAIL"
    assert "docker-compose ps grafana" in rows["grafana /api/health"]["hint"]
    assert rows["grafana datasource prometheus"]["status"] == "SKIP"
    refused = rows_of(run_doctor(*args, "--json", env={"GRAFANA_ADMIN_PASSWORD": "wrong"}))
    row = refused["grafana datasource prometheus"]
    assert (row["status"], row["detail"]) == ("FAIL", "HTTP 401: login refused")
    assert "GRAFANA_ADMIN_PASSWORD" in row["hint"]


def test_compose_mode_reports_a_host_process_on_a_published_port() -> None:
    """A port conflict: the CI's own PostgreSQL holds 5432, which compose publishes."""
    require_server("127.0.0.1", 5432, "PostgreSQL")
    nowhere = [f"--{name}=http://127.0.0.1:{free_port()}" for name in ("app", "prometheus")]
    compose = rows_of(run_doctor(*nowhere, "--json"))["port 5432 (postgres)"]
    assert compose["status"] == "FAIL"
    assert "a host process: compose cannot publish 5432" in compose["detail"]
    assert "ss -tlnp | grep :5432" in compose["hint"]
    local = rows_of(run_doctor(*nowhere, "--stack=local", "--json"))["port 5432 (postgres)"]
    assert local["status"] == "OK" and "answers as PostgreSQL" in local["detail"]


def _fake_proc(root: Path) -> Path:
    """A /proc with one IPv4 and one IPv6 listener owned by pid 42, and one closed socket."""
    (root / "net").mkdir(parents=True)
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
    header += "  timeout inode\n"
    v4 = "   0: 0100007F:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 111\n"
    closed = "   1: 0100007F:1F91 0100007F:9C40 06 00000000:00000000 00:00000000 00000000 0 0 0\n"
    v6 = "   0: 00000000000000000000000001000000:0050 " + "0" * 32 + ":0000 0A 0:0 0:0 0 0 0 222\n"
    (root / "net" / "tcp").write_text(header + v4 + closed)
    (root / "net" / "tcp6").write_text(header + v6)
    fds = root / "42" / "fd"
    fds.mkdir(parents=True)
    (root / "42" / "comm").write_text("prometheus\n")
    (root / "42" / "cmdline").write_bytes(b"/usr/bin/prometheus\0--config.file=x\0")
    (fds / "3").symlink_to("socket:[111]")
    (fds / "4").symlink_to("/dev/null")
    return root


def test_listeners_and_owners_from_proc(tmp_path: Path) -> None:
    table = PortTable.read(_fake_proc(tmp_path))
    assert table.listeners == [
        Listener("127.0.0.1", 9090, 111),
        Listener("::1", 80, 222),
    ]
    assert table.owners == {111: Owner("prometheus", 42)}
    assert table.describe(table.holders(9090) or []) == "prometheus (pid 42) on 127.0.0.1"
    assert table.describe(table.holders(80) or []) == "owner unknown on ::1"
    assert table.holders(1234) == []


def test_no_proc_degrades_to_connecting(tmp_path: Path) -> None:
    table = PortTable.read(tmp_path / "missing")
    assert table.listeners is None
    with httpx.Client() as client:
        row = check_port(SERVICES[0], free_port(), table, client, "compose")
    assert (row.status, row.detail) == ("OK", "free")


def compose_publishers() -> dict[int, str]:
    """Host port -> the docker-compose.yml service that publishes it ("ip:host:container")."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    found = {}
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            found[int(str(mapping).split(":")[-2])] = name
    return found


def test_a_port_conflict_names_the_compose_service_that_publishes_the_port(tmp_path: Path) -> None:
    """The app publishes no port: nginx publishes the app's host port, so the hint names nginx."""
    publishers = compose_publishers()
    app_port = urlsplit(cli.DEFAULT_URLS["app"]).port
    assert app_port in publishers
    assert "fastapi" not in publishers.values()
    for service in SERVICES:
        assert publishers.get(service.port, "") == service.published_by, service.name

    app = next(service for service in SERVICES if service.name == "app")
    table = PortTable([Listener("127.0.0.1", app_port, 7)], {7: Owner("python3", 42)})
    with httpx.Client() as client:
        row = check_port(app, app_port, table, client, "compose")
    assert row.status == FAIL
    assert f"grep :{app_port}" in row.hint
    assert f"{app_port} that `{publishers[app_port]}` publishes in docker-compose.yml" in row.hint


def test_sample_names_and_has_data() -> None:
    text = '# HELP x\nmemo_total 3\nfastapi_requests_total{method="GET"} 1\n'
    assert sample_names(text) == {"memo_total", "fastapi_requests_total"}
    vector = {"resultType": "vector", "result": [{"metric": {}, "value": [1, "NaN"]}]}
    assert not has_data(vector)
    vector["result"].append({"metric": {}, "value": [1, "0"]})
    assert has_data(vector)
    assert not has_data({"resultType": "vector", "result": []})


def test_a_check_that_fails_skips_the_checks_that_need_it(tmp_path: Path) -> None:
    def down(cfg: Config, client: httpx.Client) -> Row:
        return Row("base", FAIL, "down")

    def never(cfg: Config, client: httpx.Client) -> Row:
        raise AssertionError("a check whose base failed ran")

    def up(cfg: Config, client: httpx.Client) -> list[Row]:
        return [Row("other", OK, "up"), Row("other 2", OK, "up")]

    checks = (
        cli.Check("base", down),
        cli.Check("after base", never, needs="base"),
        cli.Check("other", up),
        cli.Check("after other", lambda cfg, client: Row("after other", OK, "ran"), needs="other"),
    )
    config = Config("", "", "", ("", ""), tmp_path, {})
    rows = cli.run_checks(config, checks)
    assert [(row.check, row.status) for row in rows] == [
        ("base", FAIL),
        ("after base", SKIP),
        ("other", OK),
        ("other 2", OK),
        ("after other", OK),
    ]
