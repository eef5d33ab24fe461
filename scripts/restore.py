#!/usr/bin/env python3
"""`make restore`: put a backup from `scripts/backup.py` back.

    python scripts/restore.py ARCHIVE local [--prometheus-data NEW_DIR] [--grafana-data NEW_DIR]
                                            [--alertmanager-data NEW_DIR]
    python scripts/restore.py ARCHIVE compose [--compose "docker compose -f FILE"] --yes

local: into fresh directories (absent or empty). The Prometheus directory is a complete TSDB:
start Prometheus with --storage.tsdb.path=NEW_DIR. The Grafana directory is a data dir
(grafana.db, plugins/, ...): point Grafana's paths.data at it. The Alertmanager directory
(silences, nflog) is a --storage.path.
compose: replaces the contents of the prometheus_data, grafana_data and alertmanager_data volumes
(those the archive has). Each service is stopped, its volume emptied and filled from the archive
(owned as the image expects), and started again. It asks first unless --yes is given.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

try:
    from scripts.backup import (
        DEFAULT_COMPOSE,
        ENV_COMPOSE,
        MANIFEST,
        OWNERS,
        PARTS,
        BackupError,
        Compose,
    )
except ModuleNotFoundError:  # run as `python scripts/restore.py`: scripts/ is on sys.path
    from backup import (  # type: ignore[no-redef]
        DEFAULT_COMPOSE,
        ENV_COMPOSE,
        MANIFEST,
        OWNERS,
        PARTS,
        BackupError,
        Compose,
    )


def unpack(archive: Path, into: Path) -> tuple[Path, dict[str, Any]]:
    """Extract safely (no absolute paths, links out or devices); the backup's top directory."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(into, filter="data")
    except (OSError, tarfile.TarError) as error:
        raise BackupError(f"cannot read {archive}: {error}") from None
    tops = [p.parent for p in into.glob(f"*/{MANIFEST}")]
    if len(tops) != 1:
        raise BackupError(f"{archive} is not a backup of scripts/backup.py (no single {MANIFEST})")
    return tops[0], json.loads((tops[0] / MANIFEST).read_text())


def _fresh(directory: Path) -> None:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BackupError(f"{directory} is not empty: restore into a fresh directory")


def restore_local(top: Path, targets: dict[str, Path | None]) -> list[str]:
    wanted = {part: target for part, target in targets.items() if target is not None}
    for part, target in wanted.items():
        if not (top / part).is_dir():
            raise BackupError(f"the archive has no {part}/ to restore")
        _fresh(target)
    for part, target in wanted.items():
        shutil.copytree(top / part, target, dirs_exist_ok=True)
    return [f"{part} -> {target}" for part, target in wanted.items()]


@contextmanager
def _tar_stream(directory: Path) -> Iterator[IO[bytes]]:
    """The directory's contents as a tar file, to feed a helper container's stdin."""
    with tempfile.TemporaryFile() as stream:
        with tarfile.open(fileobj=stream, mode="w") as archive:
            archive.add(directory, arcname=".")
        stream.seek(0)
        yield stream


def write_volume(compose: Compose, volume: str, source: Path, owner: str) -> None:
    """Empty the volume, then fill it from source, owned by the image's user."""
    script = f"find /data -mindepth 1 -delete && tar -C /data -xf - && chown -R {owner} /data"
    with _tar_stream(source) as stream:
        compose.run(*compose.helper(volume, "sh", "-c", script, readonly=False), stdin=stream)


def restore_compose(top: Path, compose: Compose) -> list[str]:
    done = []
    for part in (p for p in PARTS if (top / p).is_dir()):
        volume = compose.volume(part)
        with compose.stopped(part):
            write_volume(compose, volume, top / part, OWNERS[part])
        done.append(f"{part} -> volume {volume}")
    return done


def _confirmed(top: Path, yes: bool) -> bool:
    parts = [part for part in PARTS if (top / part).is_dir()]
    if yes:
        return True
    answer = input(f"Replace the data of {' and '.join(parts)} with {top.name}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", type=Path)
    targets = parser.add_subparsers(dest="target", required=True)
    local = targets.add_parser("local", help="into fresh local directories")
    local.add_argument("--prometheus-data", type=Path, help="the new --storage.tsdb.path")
    local.add_argument("--grafana-data", type=Path, help="the new Grafana data dir")
    local.add_argument("--alertmanager-data", type=Path, help="the new Alertmanager storage.path")
    compose = targets.add_parser("compose", help="replace the compose volumes' contents")
    compose.add_argument("--compose", default=os.environ.get(ENV_COMPOSE, DEFAULT_COMPOSE))
    compose.add_argument("--yes", action="store_true", help="do not ask")
    args = parser.parse_args(argv)
    if args.target == "local" and not (
        args.prometheus_data or args.grafana_data or args.alertmanager_data
    ):
        parser.error("local: give --prometheus-data, --grafana-data and/or --alertmanager-data")
    return args


def restore(args: argparse.Namespace, top: Path) -> list[str]:
    if args.target == "local":
        targets = {part: getattr(args, f"{part}_data") for part in PARTS}
        return restore_local(top, targets)
    if not _confirmed(top, args.yes):
        raise BackupError("not confirmed; nothing changed")
    return restore_compose(top, Compose(tuple(shlex.split(args.compose))))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="restore-") as tmp:
        try:
            top, manifest = unpack(args.archive, Path(tmp))
            done = restore(args, top)
        except (BackupError, subprocess.SubprocessError) as error:
            print(f"restore failed: {error}", file=sys.stderr)
            return 1
    print(f"restored {args.archive.name} (taken {manifest.get('created')}): {'; '.join(done)}")
    if args.target == "local" and args.prometheus_data:
        print(f"start Prometheus with --storage.tsdb.path={args.prometheus_data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
