"""`scripts/backup.py` and `scripts/restore.py` (`make backup` / `make restore`) with a real
Prometheus (Debian package), a Grafana data directory holding a real SQLite grafana.db, and the
data of a real Alertmanager (Debian package) holding a silence made with amtool.

A Prometheus with --web.enable-admin-api scrapes itself every second; once it has samples, the
test backs it up, stops it, restores into fresh directories, starts a new Prometheus there and
reads the same raw samples back at a fixed time in the past.

The compose path runs against the same kind of Prometheus, with `docker` replaced by FAKE_DOCKER
(a test double: no Docker engine here). It answers the few commands the scripts use, with named
volumes as local directories and `docker run` executing the helper's command locally.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from stack_support import ROOT, require_binary, wait_http

from tests.servers import Processes, free_port, wait_for

pytestmark = pytest.mark.e2e

SERIES = 'scrape_duration_seconds{job="self"}[1m]'  # raw samples whose values all differ
ARCHIVE = re.compile(r"monitoring-\d{8}T\d{6}Z\.tar\.gz")


@dataclass
class Prometheus:
    url: str
    data: Path

    def raw_samples(self, at: float) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": SERIES, "time": at})
        body = response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])


StartPrometheus = Callable[..., Prometheus]


@dataclass(frozen=True)
class FakeDocker:
    state: Path  # volumes/<name>/ and the log of calls
    env: dict[str, str]  # puts the fake first on PATH

    def calls(self) -> list[list[str]]:
        """The docker commands run since the last look."""
        log = self.state / "calls"
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        log.unlink()
        return calls


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("backup")


@pytest.fixture(scope="module")
def processes(workdir: Path) -> Iterator[Processes]:
    started = Processes(workdir)
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def start_prometheus(workdir: Path, processes: Processes) -> StartPrometheus:
    binary = require_binary("prometheus")

    def start(name: str, data: Path, *, admin_api: bool = True, scrape: bool = True) -> Prometheus:
        port = free_port()
        jobs = [{"job_name": "self", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]
        config = {"global": {"scrape_interval": "200ms"}, "scrape_configs": jobs if scrape else []}
        (workdir / f"{name}.yml").write_text(yaml.safe_dump(config))
        argv = [binary, f"--config.file={workdir / name}.yml", f"--storage.tsdb.path={data}"]
        argv += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
        processes.start(name, argv + (["--web.enable-admin-api"] if admin_api else []))
        url = f"http://127.0.0.1:{port}"
        wait_http(processes, name, f"{url}/-/ready")
        return Prometheus(url, data)

    return start


@pytest.fixture(scope="module")
def fake_docker(workdir: Path) -> FakeDocker:
    state, bin_dir = workdir / "docker-state", workdir / "bin"
    for volume in ("proj_prometheus_data", "proj_grafana_data", "proj_alertmanager_data"):
        (state / "volumes" / volume).mkdir(parents=True)
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"#!{sys.executable}\n{FAKE_DOCKER}")
    docker.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return FakeDocker(state, {"PATH": path, "FAKE_DOCKER_STATE": str(state)})


@pytest.fixture(scope="module")
def sources(
    workdir: Path, start_prometheus: StartPrometheus, fake_docker: FakeDocker
) -> dict[str, Prometheus]:
    """The two Prometheus servers to back up, started together: Prometheus takes its first
    scrape only on its 5 s discovery tick, so the waits overlap."""
    return {
        "local": start_prometheus("local", workdir / "tsdb"),
        "compose": start_prometheus("compose", fake_docker.state / "volumes/proj_prometheus_data"),
    }


def scraped(prometheus: Prometheus) -> tuple[float, list[dict[str, Any]]]:
    """A time a second back (every scrape before it committed) and the samples up to then."""

    def enough() -> tuple[float, list[dict[str, Any]]] | None:
        at = time.time() - 1
        result = prometheus.raw_samples(at)
        return (at, result) if result and len(result[0]["values"]) >= 5 else None

    return wait_for(enough, 30, "five scrapes")


def grafana_dir(path: Path) -> Path:
    """A Grafana data directory: grafana.db (real SQLite), a plugin, an empty folder."""
    (path / "plugins" / "clock").mkdir(parents=True)
    (path / "plugins" / "clock" / "plugin.json").write_text('{"id": "clock"}\n')
    (path / "png").mkdir()
    db = sqlite3.connect(path / "grafana.db")
    with db:
        db.execute("CREATE TABLE dashboard (id INTEGER PRIMARY KEY, uid TEXT, data TEXT)")
        db.executemany(
            "INSERT INTO dashboard (uid, data) VALUES (?, ?)",
            [(f"uid-{n}", json.dumps({"title": f"board {n}"})) for n in range(50)],
        )
    db.close()
    return path


@dataclass
class Alertmanager:
    """Debian's Alertmanager on a data directory, started and stopped with amtool at hand."""

    processes: Processes
    data: Path

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        config = self.processes.logs / f"{self.data.name}-alertmanager.yml"
        config.write_text(
            yaml.safe_dump({"route": {"receiver": "none"}, "receivers": [{"name": "none"}]})
        )
        argv = [require_binary("prometheus-alertmanager"), f"--config.file={config}"]
        argv += [f"--storage.path={self.data}", f"--web.listen-address={self.url[7:]}"]
        self.processes.start(self.data.name, [*argv, "--cluster.listen-address="])
        wait_http(self.processes, self.data.name, f"{self.url}/-/ready")

    def amtool(self, *args: str) -> str:
        argv = [require_binary("amtool"), f"--alertmanager.url={self.url}", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()

    def silences(self) -> list[str]:
        return self.amtool("silence", "query", "--quiet").split()

    def stop(self) -> None:
        self.processes.stop(self.data.name)  # writes its silences and notification log


def silenced(processes: Processes, data: Path) -> str:
    """Alertmanager's data in `data` with one silence (its id), Alertmanager stopped."""
    alertmanager = Alertmanager(processes, data)
    silence = alertmanager.amtool(
        "silence", "add", "--author=backup", "--comment=maintenance", "--duration=48h", "job=app"
    )
    alertmanager.stop()
    return silence


def same_silence(processes: Processes, restored: Path, silence: str) -> None:
    alertmanager = Alertmanager(processes, restored)
    try:
        assert alertmanager.silences() == [silence]
    finally:
        alertmanager.stop()


def same_grafana(original: Path, restored: Path) -> None:
    def files(root: Path) -> set[Path]:
        return {p.relative_to(root) for p in root.rglob("*")}

    assert files(restored) == files(original)
    for relative in files(original):
        if (original / relative).is_file() and relative.suffix != ".db":
            assert (restored / relative).read_bytes() == (original / relative).read_bytes()
    assert _dump(restored / "grafana.db") == _dump(original / "grafana.db")


def _dump(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def run(
    script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def backed_up(result: subprocess.CompletedProcess[str], out: Path) -> Path:
    assert result.returncode == 0, result.stderr
    [archive] = list(out.iterdir())
    assert ARCHIVE.fullmatch(archive.name), archive.name
    return archive


def manifest(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        [member] = [m for m in tar.getmembers() if m.name.endswith("/MANIFEST.json")]
        handle = tar.extractfile(member)
        assert handle is not None
        return dict(json.load(handle))


def test_local_backup_and_restore(
    tmp_path: Path,
    sources: dict[str, Prometheus],
    start_prometheus: StartPrometheus,
    processes: Processes,
) -> None:
    old, grafana = sources["local"], grafana_dir(tmp_path / "grafana")
    silence = silenced(processes, tmp_path / "alertmanager")
    at, samples = scraped(old)
    out = tmp_path / "backups"
    args = ["local", "--prometheus-url", old.url, "--prometheus-data", str(old.data)]
    args += ["--grafana-data", str(grafana), "--alertmanager-data", str(tmp_path / "alertmanager")]
    result = run("backup.py", "--out", str(out), *args)
    archive = backed_up(result, out)
    assert manifest(archive)["prometheus"]["method"] == "snapshot"
    assert list((old.data / "snapshots").iterdir()) == []  # the snapshot does not stay behind

    new_tsdb, new_grafana = tmp_path / "new-tsdb", tmp_path / "new-grafana"
    targets = ["--prometheus-data", str(new_tsdb), "--grafana-data", str(new_grafana)]
    targets += ["--alertmanager-data", str(tmp_path / "new-alertmanager")]
    restored = run("restore.py", str(archive), "local", *targets)
    assert restored.returncode == 0, restored.stderr
    assert f"--storage.tsdb.path={new_tsdb}" in restored.stdout
    new = start_prometheus("restored-local", new_tsdb, scrape=False)
    assert new.raw_samples(at) == samples
    same_grafana(grafana, new_grafana)
    same_silence(processes, tmp_path / "new-alertmanager", silence)

    again = run("restore.py", str(archive), "local", *targets)
    assert again.returncode == 1
    assert "restore into a fresh directory" in again.stderr


def test_backup_explains_a_disabled_admin_api(
    tmp_path: Path, start_prometheus: StartPrometheus
) -> None:
    prometheus = start_prometheus("no-admin", tmp_path / "tsdb", admin_api=False, scrape=False)
    args = ["local", "--prometheus-url", prometheus.url, "--prometheus-data", str(prometheus.data)]
    result = run("backup.py", "--out", str(tmp_path / "out"), *args)
    assert result.returncode == 1
    assert "--web.enable-admin-api" in result.stderr and "--stop-and-copy" in result.stderr
    assert not (tmp_path / "out").exists()


FAKE_DOCKER = r'''
"""A test double for the docker CLI: the commands scripts/backup.py and restore.py run."""
import json, os, re, subprocess, sys

STATE = os.environ["FAKE_DOCKER_STATE"]
MOUNTS = {
    "prometheus": "/prometheus", "grafana": "/var/lib/grafana", "alertmanager": "/alertmanager"
}
args = sys.argv[1:]
with open(os.path.join(STATE, "calls"), "a") as log:
    log.write(json.dumps(args) + "\n")
if args[0] == "compose":
    words = [a for i, a in enumerate(args[1:]) if a[0] != "-" and args[i] not in ("-f", "-p")]
    if words[0] == "ps":
        print(f"container-{words[-1]}")
elif args[0] == "inspect":
    service = args[-1].removeprefix("container-")
    mount = {"Type": "volume", "Name": f"proj_{service}_data", "Destination": MOUNTS[service]}
    print(json.dumps([mount]))
elif args[0] == "run":
    volume = args[args.index("-v") + 1].split(":")[0]
    command = args[args.index("alpine:3.20") + 1:]
    path = os.path.join(STATE, "volumes", volume)
    command = [re.sub(r"/data\b", path, word) for word in command]
    if os.geteuid() != 0:
        command = [re.sub(r"chown -R \S+", "true", word) for word in command]
    sys.exit(subprocess.run(command).returncode)
'''


def compose_restore(archive: Path, docker: FakeDocker) -> None:
    for volume in (docker.state / "volumes").iterdir():  # restore replaces, never merges
        (volume / "stale-file").write_text("from before the restore")
    compose = ["compose", "--compose", "docker compose -f prod.yml", "--yes"]
    result = run("restore.py", str(archive), *compose, env=docker.env)
    assert result.returncode == 0, result.stderr
    prefix = ["compose", "-f", "prod.yml"]
    calls = [" ".join(call[3:5]) for call in docker.calls() if call[:3] == prefix]
    each = ("ps -a", "stop {}", "start {}")
    parts = ("prometheus", "grafana", "alertmanager")
    assert calls == [step.format(part) for part in parts for step in each]
    assert not list((docker.state / "volumes").glob("*/stale-file"))


def test_compose_backup_and_restore(
    tmp_path: Path,
    sources: dict[str, Prometheus],
    start_prometheus: StartPrometheus,
    processes: Processes,
    fake_docker: FakeDocker,
) -> None:
    old = sources["compose"]
    grafana = grafana_dir(fake_docker.state / "volumes" / "proj_grafana_data")
    alertmanager = fake_docker.state / "volumes" / "proj_alertmanager_data"
    silence = silenced(processes, alertmanager)
    original = tmp_path / "grafana-original"
    subprocess.run(["cp", "-a", str(grafana), str(original)], check=True)
    at, samples = scraped(old)

    out = tmp_path / "snapshot"
    result = run(
        "backup.py",
        "--out",
        str(out),
        "compose",
        f"--prometheus-url={old.url}",
        env=fake_docker.env,
    )
    archive = backed_up(result, out)
    calls = fake_docker.calls()
    assert ["compose", "stop", "grafana"] in calls and ["compose", "start", "grafana"] in calls
    assert ["compose", "stop", "alertmanager"] in calls
    assert calls[-1] == ["compose", "start", "alertmanager"]
    assert manifest(archive)["prometheus"]["volume"] == "proj_prometheus_data"
    assert list((old.data / "snapshots").iterdir()) == []

    processes.stop("compose")  # production has no admin API: stop and copy
    out = tmp_path / "stopped"
    result = run("backup.py", "--out", str(out), "compose", "--stop-and-copy", env=fake_docker.env)
    stopped = backed_up(result, out)
    assert ["compose", "stop", "prometheus"] in fake_docker.calls()
    assert manifest(stopped)["prometheus"]["method"] == "stop-and-copy"

    for name, backup in (("from-snapshot", archive), ("from-stopped", stopped)):
        compose_restore(backup, fake_docker)
        new = start_prometheus(name, old.data, scrape=False)
        assert new.raw_samples(at) == samples, name
        processes.stop(name)
        same_grafana(original, fake_docker.state / "volumes" / "proj_grafana_data")
        same_silence(processes, alertmanager, silence)
