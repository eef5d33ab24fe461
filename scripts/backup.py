#!/usr/bin/env python3
"""`make backup`: Prometheus (through its snapshot API) and Grafana's data, into one archive,
backups/monitoring-YYYYMMDDTHHMMSSZ.tar.gz. `scripts/restore.py` puts it back.

    python scripts/backup.py compose [--stop-and-copy] [--compose "docker compose -f FILE"]
    python scripts/backup.py local --prometheus-url URL --prometheus-data DIR --grafana-data DIR

Prometheus: POST /api/v1/admin/tsdb/snapshot writes a consistent copy of the TSDB (hard links
plus the in-memory head written out as a block) to <data>/snapshots/<name>; it needs
--web.enable-admin-api. The snapshot is archived, then deleted from the data directory. The
production compose file keeps the admin API off on purpose: there, `compose --stop-and-copy`
stops Prometheus, copies its stopped volume and starts it again (README, "Backups").
Grafana: compose stops Grafana while its volume is copied; `local` copies the directory and takes
grafana.db through SQLite's online backup, which is consistent even while Grafana writes.

Compose volumes are read and written by a throwaway container (`docker run --rm -v VOLUME:/data`).
Stdlib only (Python 3.10.12 or later, for tarfile's extraction filters):
it runs on a server without the project's venv.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ENV_COMPOSE = "COMPOSE"  # the compose command, e.g. "docker compose -f docker-compose.prod.yml"
DEFAULT_COMPOSE = "docker compose"
DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"  # compose publishes it on loopback only
HELPER_IMAGE = "alpine:3.20"
MOUNTS = {"prometheus": "/prometheus", "grafana": "/var/lib/grafana"}
# Who owns the data inside each image (prom/prometheus runs as nobody, grafana as 472:0).
OWNERS = {"prometheus": "65534:65534", "grafana": "472:0"}
SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")
MANIFEST = "MANIFEST.json"


class BackupError(Exception):
    """A backup or restore step failed; the message says what to do."""


# ---------------------------------------------------------------- Prometheus


def take_snapshot(url: str) -> str:
    """The name of a new TSDB snapshot (a directory under <data>/snapshots)."""
    request = urllib.request.Request(f"{url}/api/v1/admin/tsdb/snapshot", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return str(json.load(response)["data"]["name"])
    except urllib.error.HTTPError as error:
        body = error.read().decode(errors="replace")
        if "admin APIs disabled" in body:
            raise BackupError(
                f"{url} has the admin API off: start it with --web.enable-admin-api, or back "
                "up a compose Prometheus with `compose --stop-and-copy` (README, Backups)"
            ) from None
        raise BackupError(f"snapshot failed: HTTP {error.code} {body}") from None
    except (urllib.error.URLError, OSError) as error:
        raise BackupError(f"cannot reach Prometheus at {url}: {error}") from None


def local_prometheus(url: str, data_dir: Path, dest: Path) -> dict[str, Any]:
    name = take_snapshot(url)
    snapshot = data_dir / "snapshots" / name
    if not snapshot.is_dir():
        raise BackupError(f"{snapshot} missing: is {data_dir} the --storage.tsdb.path of {url}?")
    try:
        shutil.copytree(snapshot, dest)
    finally:
        shutil.rmtree(snapshot)
    return {"method": "snapshot", "snapshot": name, "url": url, "data": str(data_dir)}


# ---------------------------------------------------------------- Grafana


def sqlite_copy(source: Path, dest: Path) -> None:
    """A consistent copy of a live SQLite database (the online backup API)."""
    with (
        _closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
        _closing(sqlite3.connect(dest)) as dst,
    ):
        src.backup(dst)


@contextmanager
def _closing(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        yield connection
    finally:
        connection.close()


def _is_sqlite_side_file(name: str) -> bool:
    return name.endswith(SQLITE_SIDE_FILES)


def local_grafana(data_dir: Path, dest: Path) -> dict[str, Any]:
    if not data_dir.is_dir():
        raise BackupError(f"{data_dir} is not a directory (Grafana's data dir, with grafana.db)")
    databases = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*.db"))
    skip = {str(db) for db in databases}

    def ignore(directory: str, names: list[str]) -> set[str]:
        relative = Path(directory).relative_to(data_dir)
        return {n for n in names if str(relative / n) in skip or _is_sqlite_side_file(n)}

    shutil.copytree(data_dir, dest, ignore=ignore)
    for database in databases:
        sqlite_copy(data_dir / database, dest / database)
    return {"method": "copy, *.db by SQLite online backup", "data": str(data_dir)}


# ---------------------------------------------------------------- compose volumes


@dataclass(frozen=True)
class Compose:
    """The compose project, and its volumes through a throwaway helper container."""

    command: tuple[str, ...]
    docker: str = "docker"

    def run(self, *args: str, stdin: IO[bytes] | None = None) -> str:
        result = subprocess.run(args, stdin=stdin, capture_output=True, check=False)
        if result.returncode != 0:
            error = result.stderr.decode(errors="replace").strip()
            raise BackupError(f"`{shlex.join(args)}` failed: {error}")
        return result.stdout.decode(errors="replace")

    def compose(self, *args: str) -> str:
        return self.run(*self.command, *args)

    def volume(self, service: str) -> str:
        """The named volume mounted at the service's data path (found through its container)."""
        container = self.compose("ps", "-a", "-q", service).split()
        if not container:
            raise BackupError(f"no {service} container: `{shlex.join(self.command)} up -d` first")
        mounts = json.loads(
            self.run(self.docker, "inspect", "-f", "{{json .Mounts}}", container[0])
        )
        for mount in mounts:
            if mount.get("Destination") == MOUNTS[service] and mount.get("Type") == "volume":
                return str(mount["Name"])
        raise BackupError(f"{service} has no named volume at {MOUNTS[service]}")

    @contextmanager
    def stopped(self, service: str) -> Iterator[None]:
        self.compose("stop", service)
        try:
            yield
        finally:
            self.compose("start", service)

    def helper(self, volume: str, *command: str, readonly: bool = True) -> list[str]:
        mount = f"{volume}:/data" + (":ro" if readonly else "")
        return [self.docker, "run", "--rm", "-i", "-v", mount, HELPER_IMAGE, *command]

    def read_volume(self, volume: str, subdir: str, dest: Path, skip: str = "") -> None:
        """Copy /data/<subdir> of the volume to dest (a tar stream out of a helper container)."""
        argv = self.helper(volume, "tar", "-C", f"/data/{subdir}", "-cf", "-", ".")
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
            assert process.stdout is not None
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                members = (m for m in archive if not (skip and _under(m.name, skip)))
                for member in members:
                    archive.extract(member, dest, filter="data")
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
        if process.returncode != 0:
            raise BackupError(f"reading volume {volume} failed: {error.strip()}")


def _under(name: str, top: str) -> bool:
    name = name.removeprefix("./")
    return name == top or name.startswith(f"{top}/")


def compose_prometheus(compose: Compose, url: str, dest: Path, stop: bool) -> dict[str, Any]:
    volume = compose.volume("prometheus")
    if stop:  # a stopped TSDB is consistent; leave earlier snapshots out
        with compose.stopped("prometheus"):
            compose.read_volume(volume, ".", dest, skip="snapshots")
        return {"method": "stop-and-copy", "volume": volume}
    name = take_snapshot(url)
    try:
        compose.read_volume(volume, f"snapshots/{name}", dest)
    finally:
        compose.run(*compose.helper(volume, "rm", "-rf", f"/data/snapshots/{name}", readonly=False))
    return {"method": "snapshot", "snapshot": name, "volume": volume}


def compose_grafana(compose: Compose, dest: Path) -> dict[str, Any]:
    volume = compose.volume("grafana")
    with compose.stopped("grafana"):  # grafana.db is SQLite: copy it at rest
        compose.read_volume(volume, ".", dest)
    return {"method": "stop-and-copy", "volume": volume}


# ---------------------------------------------------------------- the archive


def timestamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def write_archive(staging: Path, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{staging.name}.tar.gz"
    try:
        with tarfile.open(path, "x:gz") as archive:  # "x": never overwrite an earlier backup
            archive.add(staging, arcname=staging.name)
    except FileExistsError:
        raise BackupError(f"{path} exists (one backup a second): try again") from None
    return path


def back_up(args: argparse.Namespace, staging: Path) -> dict[str, Any]:
    """Fill staging with prometheus/ and grafana/; the manifest entries."""
    manifest: dict[str, Any] = {"created": staging.name.split("-")[-1], "source": args.source}
    if args.source == "local":
        if args.prometheus_data:
            manifest["prometheus"] = local_prometheus(
                args.prometheus_url, args.prometheus_data, staging / "prometheus"
            )
        if args.grafana_data:
            manifest["grafana"] = local_grafana(args.grafana_data, staging / "grafana")
        return manifest
    compose = Compose(tuple(shlex.split(args.compose)))
    if not args.no_prometheus:
        manifest["prometheus"] = compose_prometheus(
            compose, args.prometheus_url, staging / "prometheus", args.stop_and_copy
        )
    if not args.no_grafana:
        manifest["grafana"] = compose_grafana(compose, staging / "grafana")
    return manifest


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("backups"), help="default ./backups")
    sources = parser.add_subparsers(dest="source", required=True)
    compose = sources.add_parser("compose", help="the compose volumes (docker runs here)")
    compose.add_argument("--compose", default=os.environ.get(ENV_COMPOSE, DEFAULT_COMPOSE))
    compose.add_argument("--prometheus-url", default=DEFAULT_PROMETHEUS_URL)
    compose.add_argument("--stop-and-copy", action="store_true", help="no admin API (production)")
    compose.add_argument("--no-prometheus", action="store_true")
    compose.add_argument("--no-grafana", action="store_true")
    local = sources.add_parser("local", help="a local Prometheus and Grafana data directory")
    local.add_argument("--prometheus-url", default=DEFAULT_PROMETHEUS_URL)
    local.add_argument("--prometheus-data", type=Path, help="its --storage.tsdb.path")
    local.add_argument("--grafana-data", type=Path, help="Grafana's data dir (grafana.db)")
    args = parser.parse_args(argv)
    if args.source == "local" and not (args.prometheus_data or args.grafana_data):
        parser.error("local: give --prometheus-data and/or --grafana-data")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="backup-") as tmp:
        staging = Path(tmp) / f"monitoring-{timestamp()}"
        staging.mkdir()
        try:
            manifest = back_up(args, staging)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            path = write_archive(staging, args.out)
        except BackupError as error:
            print(f"backup failed: {error}", file=sys.stderr)
            return 1
    print(f"{path}: {', '.join(k for k in ('prometheus', 'grafana') if k in manifest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
