"""Alerts end to end with the real binaries: the app, Debian's Prometheus running the project's
alert rules, and Debian's Alertmanager running the project's alertmanager.yml, rendered by
alertmanager/render.sh with both receivers pointed at a webhook in this test.

Shortened for a test, and only these: the scrape and evaluation intervals, the rules' `for`, the
resend delay, and the route tree's group_wait and group_interval. Expressions, labels,
annotations, routes, inhibit rules and receivers are the project's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from scripts.doctor import alerting_checks
from scripts.doctor.rows import FAIL, OK, Config
from tests.servers import Processes, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
RENDER = ROOT / "alertmanager" / "render.sh"
TEMPLATE = ROOT / "alertmanager" / "alertmanager.yml"
PROMETHEUS_DIR = ROOT / "prometheus"
# Every wait below is bounded by a multiple of this; raise it on a slow machine.
SCALE = float(os.environ.get("TEST_TIMEOUT_SCALE", "1"))
WAIT = 30 * SCALE
# The alerts the app's target being down inhibits (alertmanager.yml), with the labels their rules
# give them (FastAPIMetricsAbsent's absent() carries no job).
INHIBITED_BY_APP_DOWN = {
    "FastAPIHighErrorRatio": {"severity": "critical", "job": "fastapi"},
    "FastAPIHighLatencyP95": {"severity": "warning", "job": "fastapi"},
    "FastAPIMetricsAbsent": {"severity": "critical"},
}

pytestmark = pytest.mark.e2e


def binary(name: str) -> str:
    """A required binary: missing, the test fails (CI installs it, see .ci/run)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed (Debian package prometheus or prometheus-alertmanager)"
        )
    return path


# ---------------------------------------------------------------- the receiver


@dataclass(frozen=True)
class Delivery:
    receiver: str  # the webhook path: /page or /notify
    body: dict[str, Any]
    answered: int


@dataclass
class Webhook:
    """A webhook receiver that records every request, answering 200 or `status`; `stop()` makes
    its port refuse connections until `start()`."""

    port: int = field(default_factory=free_port)
    status: int = 200
    deliveries: list[Delivery] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def url(self, receiver: str) -> str:
        return f"http://127.0.0.1:{self.port}/{receiver}"

    def start(self) -> None:
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = webhook.status
                webhook.deliveries.append(Delivery(self.path.strip("/"), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    def delivered(self, alertname: str, status: str, since: int = 0) -> list[Delivery]:
        """Accepted notifications (answered 200) with `alertname` in `status`."""
        return [
            delivery
            for delivery in self.deliveries[since:]
            if delivery.answered == 200
            and any(
                alert["labels"]["alertname"] == alertname and alert["status"] == status
                for alert in delivery.body["alerts"]
            )
        ]

    def alertnames(self, since: int = 0) -> set[str]:
        """Names of the alerts notified as firing."""
        return {
            alert["labels"]["alertname"]
            for delivery in self.deliveries[since:]
            for alert in delivery.body["alerts"]
            if alert["status"] == "firing"
        }


# ---------------------------------------------------------------- the stack


def shortened_template(tmp: Path) -> Path:
    """alertmanager.yml with the root route's first wait and group interval at a second or two."""
    text = TEMPLATE.read_text()
    for key, value in (("group_wait", "1s"), ("group_interval", "2s")):
        text, count = re.subn(rf"(?m)^  {key}: .*$", f"  {key}: {value}", text)
        assert count == 1, key
    path = tmp / "alertmanager.template.yml"
    path.write_text(text)
    return path


def shortened_rules(tmp: Path) -> list[str]:
    """The project's rule files, every alert's `for` at 2s."""
    paths = []
    for source in sorted((PROMETHEUS_DIR / "rules").glob("*.yml")):
        rules = yaml.safe_load(source.read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "2s"
        path = tmp / source.name
        path.write_text(yaml.safe_dump(rules))
        paths.append(str(path))
    return paths


def prometheus_config(tmp: Path, app: str, alertmanager: str) -> Path:
    """prometheus.yml's alerting block and app job, pointed at the local processes."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    for manager in config["alerting"]["alertmanagers"]:
        for static in manager["static_configs"]:
            assert static["targets"] == ["alertmanager:9093"]
            static["targets"] = [alertmanager]
    [job] = [job for job in config["scrape_configs"] if job["job_name"] == "fastapi"]
    job["static_configs"] = [{"targets": [app]}]
    job["scrape_interval"] = "1s"
    config["scrape_configs"] = [job]
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = shortened_rules(tmp)
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class Alerting:
    processes: Processes
    webhook: Webhook
    app_port: int
    app_argv: list[str]
    app_env: dict[str, str]
    alertmanager: str
    prometheus: str

    @property
    def app(self) -> str:
        return f"127.0.0.1:{self.app_port}"

    def start_app(self) -> None:
        self.processes.start("app", self.app_argv, cwd=ROOT, env=self.app_env)
        wait_http(self.processes, f"http://{self.app}/health")

    def stop_app(self) -> None:
        self.processes.stop("app")

    def alerts(self) -> list[dict[str, Any]]:
        """Alertmanager's active alerts (suppressed ones included)."""
        response = httpx.get(f"{self.alertmanager}/api/v2/alerts", timeout=5)
        response.raise_for_status()
        return list(response.json())

    def alert(self, alertname: str) -> dict[str, Any] | None:
        found = [a for a in self.alerts() if a["labels"]["alertname"] == alertname]
        return found[0] if found else None

    def post(self, labels: dict[str, str], *, resolved: bool = False) -> None:
        """An alert straight into Alertmanager, as Prometheus sends one."""
        now = datetime.now(UTC)
        ends = now if resolved else now + timedelta(hours=1)
        alert = {"labels": labels, "annotations": {}, "endsAt": ends.isoformat()}
        response = httpx.post(f"{self.alertmanager}/api/v2/alerts", json=[alert], timeout=5)
        response.raise_for_status()

    def barrier(self, name: str) -> None:
        """Post an alert no rule inhibits or silences and wait for its notification: whatever
        Alertmanager was going to send for groups that existed before it has been sent."""
        since = len(self.webhook.deliveries)
        labels = {"alertname": name, "severity": "warning", "job": "test"}
        self.post(labels)
        wait_for(lambda: self.webhook.delivered(name, "firing", since), WAIT, f"{name} delivered")
        self.post(labels, resolved=True)

    def amtool(self, *args: str) -> str:
        argv = [binary("amtool"), f"--alertmanager.url={self.alertmanager}", *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def metric(self, name: str) -> float:
        text = httpx.get(f"{self.alertmanager}/metrics", timeout=5).text
        values = [line.split()[-1] for line in text.splitlines() if line.startswith(name)]
        return sum(float(value) for value in values)


def wait_http(processes: Processes, url: str) -> None:
    def ready() -> bool:
        processes.check_alive()
        return httpx.get(url, timeout=2).status_code == 200

    wait_for(ready, WAIT, url)


@pytest.fixture(scope="module")
def alerting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alerting]:
    tmp = tmp_path_factory.mktemp("alerting")
    prometheus_binary, alertmanager_binary = binary("prometheus"), binary("prometheus-alertmanager")
    processes = Processes(tmp)
    webhook = Webhook()
    webhook.start()
    app_port, am_port, prometheus_port = free_port(), free_port(), free_port()
    app_argv = [sys.executable, "-m", "uvicorn", "service.main:app", "--host", "127.0.0.1"]
    app_argv += ["--port", str(app_port), "--no-access-log"]
    app_env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'memos.db'}"}
    am = f"127.0.0.1:{am_port}"
    state = Alerting(processes, webhook, app_port, app_argv, app_env, f"http://{am}", "")
    try:
        state.start_app()
        render = ["sh", str(RENDER), str(shortened_template(tmp)), str(tmp / "alertmanager.yml")]
        flags = [f"--config.file={tmp / 'alertmanager.yml'}", f"--storage.path={tmp / 'am'}"]
        flags += [f"--web.listen-address={am}", "--cluster.listen-address="]
        receivers = {
            "ALERTMANAGER_PAGE_URL": webhook.url("page"),
            "ALERTMANAGER_NOTIFY_URL": webhook.url("notify"),
        }
        processes.start(
            "alertmanager",
            [*render, alertmanager_binary, *flags],
            env={**os.environ, **receivers},
        )
        wait_http(processes, f"{state.alertmanager}/-/ready")
        config = prometheus_config(tmp, state.app, am)
        state.prometheus = f"http://127.0.0.1:{prometheus_port}"
        argv = [prometheus_binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}"]
        argv += [f"--web.listen-address=127.0.0.1:{prometheus_port}", "--log.level=warn"]
        argv += ["--rules.alert.resend-delay=1s"]
        processes.start("prometheus", argv)
        wait_http(processes, f"{state.prometheus}/-/ready")
        wait_for(lambda: prometheus_sends_to(state), WAIT, "Prometheus has an active Alertmanager")
        yield state
    finally:
        processes.stop_all()
        if webhook.server is not None:
            webhook.stop()


def prometheus_sends_to(state: Alerting) -> bool:
    response = httpx.get(f"{state.prometheus}/api/v1/alertmanagers", timeout=5).json()
    urls = [item["url"] for item in response["data"]["activeAlertmanagers"]]
    return urls == [f"{state.alertmanager}/api/v2/alerts"]


@pytest.fixture
def quiet(alerting: Alerting) -> Alerting:
    """The app up and scraped, and no alert active: a test starts from a healthy stack."""
    if "app" not in alerting.processes.running:
        alerting.start_app()
    if alerting.webhook.server is None:
        alerting.webhook.start()
    alerting.webhook.status = 200
    for leftover in alerting.alerts():  # posted by a test that failed before resolving it
        if not leftover.get("generatorURL"):
            alerting.post(leftover["labels"], resolved=True)
    wait_for(lambda: not alerting.alerts(), WAIT, "no active alert in Alertmanager")
    # Before the first scrape FastAPIMetricsAbsent fires (its `for` is 2s here, not 2m); its
    # resolved notification is sent before the barrier's.
    alerting.barrier("QuietBarrier")
    return alerting


# ---------------------------------------------------------------- the tests


def test_app_down_pages_once_with_its_labels_and_annotations_then_resolves(
    quiet: Alerting,
) -> None:
    webhook, since = quiet.webhook, len(quiet.webhook.deliveries)
    quiet.stop_app()
    [page] = wait_for(
        lambda: webhook.delivered("TargetDown", "firing", since), WAIT, "TargetDown paged"
    )
    assert page.receiver == "page"
    assert page.body["receiver"] == "page"
    assert page.body["groupLabels"] == {"alertname": "TargetDown", "job": "fastapi"}
    [alert] = page.body["alerts"]
    assert alert["labels"] == {
        "alertname": "TargetDown",
        "job": "fastapi",
        "instance": quiet.app,
        "severity": "critical",
    }
    assert alert["annotations"] == {
        "summary": f"fastapi target {quiet.app} is down",
        "description": f"Prometheus has failed to scrape {quiet.app} for more than 1 minute.",
    }

    # What the outage causes, as Prometheus would send it: Alertmanager holds it back.
    for alertname, labels in INHIBITED_BY_APP_DOWN.items():
        quiet.post({"alertname": alertname, **labels})
    for alertname in INHIBITED_BY_APP_DOWN:
        inhibited = wait_for(lambda name=alertname: quiet.alert(name), WAIT, alertname)
        assert inhibited["status"]["state"] == "suppressed", inhibited
        assert inhibited["status"]["inhibitedBy"], inhibited
    # Another job's errors are not this outage: delivered (and a barrier for the ones above).
    other = {"alertname": "FastAPIHighErrorRatio", "severity": "critical", "job": "other-app"}
    quiet.post(other)
    [delivered] = wait_for(
        lambda: webhook.delivered("FastAPIHighErrorRatio", "firing", since), WAIT, "other job"
    )
    assert [a["labels"] for a in delivered.body["alerts"]] == [other]
    quiet.post(other, resolved=True)
    assert webhook.alertnames(since) == {"TargetDown", "FastAPIHighErrorRatio"}
    for alertname, labels in INHIBITED_BY_APP_DOWN.items():
        quiet.post({"alertname": alertname, **labels}, resolved=True)

    quiet.start_app()
    [resolved] = wait_for(
        lambda: webhook.delivered("TargetDown", "resolved", since), WAIT, "TargetDown resolved"
    )
    assert resolved.receiver == "page"
    assert [a["labels"]["instance"] for a in resolved.body["alerts"]] == [quiet.app]
    assert len(webhook.delivered("TargetDown", "firing", since)) == 1  # paged once


def test_database_down_inhibits_the_errors_it_causes(quiet: Alerting) -> None:
    since = len(quiet.webhook.deliveries)
    database_down = {"alertname": "PostgresDown", "severity": "critical", "job": "postgres"}
    quiet.post(database_down)
    wait_for(lambda: quiet.webhook.delivered("PostgresDown", "firing", since), WAIT, "paged")
    errors = {"alertname": "FastAPIHighErrorRatio", "severity": "critical", "job": "fastapi"}
    quiet.post(errors)
    inhibited = wait_for(lambda: quiet.alert("FastAPIHighErrorRatio"), WAIT, "errors alert")
    assert inhibited["status"]["state"] == "suppressed", inhibited
    [source] = [a for a in quiet.alerts() if a["labels"]["alertname"] == "PostgresDown"]
    assert inhibited["status"]["inhibitedBy"] == [source["fingerprint"]]
    quiet.barrier("DatabaseBarrier")
    assert "FastAPIHighErrorRatio" not in quiet.webhook.alertnames(since)
    quiet.post(errors, resolved=True)
    quiet.post(database_down, resolved=True)


def test_a_silence_made_with_amtool_suppresses_delivery(quiet: Alerting) -> None:
    webhook, since = quiet.webhook, len(quiet.webhook.deliveries)
    silence = quiet.amtool(
        "silence", "add", "--author=test", "--comment=maintenance", "--duration=10m",
        "alertname=TargetDown", "job=fastapi",
    ).strip()  # fmt: skip
    quiet.stop_app()
    silenced = wait_for(lambda: quiet.alert("TargetDown"), WAIT, "TargetDown in Alertmanager")
    assert silenced["status"]["state"] == "suppressed", silenced
    assert silenced["status"]["silencedBy"] == [silence]
    quiet.barrier("SilenceBarrier")
    assert "TargetDown" not in webhook.alertnames(since)

    quiet.amtool("silence", "expire", silence)  # the maintenance is over, the app still down
    wait_for(lambda: webhook.delivered("TargetDown", "firing", since), WAIT, "paged after expiry")
    quiet.start_app()
    wait_for(lambda: webhook.delivered("TargetDown", "resolved", since), WAIT, "resolved")


def test_a_receiver_that_is_down_is_retried_and_nothing_is_lost(quiet: Alerting) -> None:
    webhook, since = quiet.webhook, len(quiet.webhook.deliveries)
    webhook.status = 500
    quiet.stop_app()

    def refused_twice() -> bool:
        failed = [d for d in webhook.deliveries[since:] if d.answered == 500]
        return len([d for d in failed if d.body["alerts"][0]["status"] == "firing"]) >= 2

    wait_for(refused_twice, WAIT, "the page retried after HTTP 500")
    webhook.status = 200
    wait_for(lambda: webhook.delivered("TargetDown", "firing", since), WAIT, "page delivered")

    webhook.stop()  # connection refused
    failed_before = quiet.metric("alertmanager_notification_requests_failed_total")
    quiet.start_app()
    wait_for(
        lambda: (
            quiet.metric("alertmanager_notification_requests_failed_total") >= failed_before + 2
        ),
        WAIT,
        "the resolved notification retried while the receiver refuses connections",
    )
    assert not webhook.delivered("TargetDown", "resolved", since)
    webhook.start()
    wait_for(lambda: webhook.delivered("TargetDown", "resolved", since), WAIT, "resolved delivered")
    # The receiver's outage stayed between Alertmanager and the receiver.
    prometheus = httpx.get(f"{quiet.prometheus}/metrics", timeout=5).text
    errors = [line for line in prometheus.splitlines() if "notifications_errors_total{" in line]
    assert errors and all(float(line.split()[-1]) == 0 for line in errors), errors

    # `make doctor` reports the outage from Alertmanager's own counters; Prometheus's side is clean.
    config = Config(
        app=f"http://{quiet.app}",
        prometheus=quiet.prometheus,
        grafana="",
        grafana_auth=("", ""),
        dashboards=ROOT,
        ports={},
        alertmanager=quiet.alertmanager,
    )
    with httpx.Client() as client:
        receivers = alerting_checks.check_receiver_notifications(config, client)
        prometheus = alerting_checks.check_prometheus_notifications(config, client)
    assert receivers.status == FAIL, receivers
    assert receivers.detail.startswith("since start: webhook: "), receivers
    assert "ALERTMANAGER_PAGE_URL" in receivers.hint
    assert prometheus.status == OK, prometheus
