"""Exact `/metrics` under several worker processes, whichever worker answers the scrape.

Each worker keeps its own SDK state and aggregator. With a shared directory, every worker serves a
snapshot of its state on a Unix socket there; the worker that receives a scrape asks every live
peer, adds the answers to its own state and renders the sum. A worker that shuts down leaves its
final counters in the directory before it stops answering, so totals do not drop when a worker is
replaced. Only server workers take part: gunicorn's, and uvicorn's under `--workers` (not the
one process `--reload` runs, nor any other multiprocessing child).

prometheus_client's multiprocess mode is not an option: it accepts only its own metric types and
refuses custom collectors such as the OpenTelemetry reader.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import marshal
import multiprocessing
import os
import socket
import socketserver
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from operator import add
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import Metric as MetricFamily

from otel.export.gauge_modes import LIVE_ONLY, PER_WORKER, GaugeModes
from otel.metrics.aggregator import Entry, RequestExemplar

log = logging.getLogger(__name__)

WORKERS_DIR_VARIABLE = "OTEL_PYTHON_FASTAPI_WORKERS_DIR"
PEER_TIMEOUT_SECONDS = 2.0
# How often the snapshot server checks for shutdown; a stopping worker waits up to this long.
SERVER_POLL_SECONDS = 0.5

Snapshot = dict[str, Any]


def workers_dir(env: Mapping[str, str]) -> Path | None:
    """The shared directory: set explicitly, or derived from the uvicorn or gunicorn master."""
    explicit = env.get(WORKERS_DIR_VARIABLE, "").strip()
    if explicit:
        return Path(explicit)
    master = _master_pid()
    if master is None:
        return None
    return Path(tempfile.gettempdir()) / f"otel-fastapi-workers-{master}-{_start_ticks(master)}"


def _master_pid() -> int | None:
    """The master's pid when this process is one of its server workers, else None."""
    if Path(sys.argv[0]).name.startswith("gunicorn"):  # gunicorn forks them
        return os.getppid()
    config = _uvicorn_subprocess_config()
    if config is not None and config.workers > 1 and not config.should_reload:
        return os.getppid()  # uvicorn --workers spawns them; --reload spawns one, not a worker
    return None


def _uvicorn_subprocess_config() -> Any:
    """The uvicorn Config this process was spawned with, read from uvicorn's entry frame.

    A multiprocessing child is not necessarily a server worker (uvicorn --reload's server, a
    process pool the app starts): only uvicorn's own config says how many workers there are.
    """
    if multiprocessing.parent_process() is None:
        return None
    frame = sys._current_frames().get(threading.main_thread().ident or 0)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "subprocess_started" and code.co_filename.endswith(_UVICORN_ENTRY):
            return frame.f_locals.get("config")
        frame = frame.f_back
    return None


_UVICORN_ENTRY = os.path.join("uvicorn", "_subprocess.py")


def _start_ticks(pid: int) -> str:
    # A pid can be reused; with its start time the directory is the master's alone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "0"


class WorkerExchange:
    """Serves this worker's snapshot to its peers and gathers theirs.

    The directory holds one socket per live worker, `retired.json` (the summed final counters of
    every worker that has stopped) and, only if a worker died mid-way, its `*.final.json`. A
    scrape holds the directory lock shared; a stopping worker holds it exclusively while it
    publishes its final counters, stops serving and folds them into `retired.json`. So a scrape
    sees every worker exactly once, live or retired, and reads two files however many workers
    have come and gone.
    """

    def __init__(self, directory: Path, snapshot: Callable[[], Snapshot]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._snapshot = snapshot
        # The pid alone is not unique: pids are reused, and a test may run several exchanges.
        self.worker_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._socket_path = directory / f"{self.worker_id}.sock"
        self._server = _SnapshotServer(str(self._socket_path), snapshot)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(SERVER_POLL_SECONDS,),
            name="otel-worker-exchange",
            daemon=True,
        )
        self._thread.start()

    def peer_snapshots(self) -> list[Snapshot]:
        """Every other live worker's snapshot, and the final counters of those that stopped."""
        with _locked(self.directory, fcntl.LOCK_SH):
            sockets = [p for p in self.directory.glob("*.sock") if p != self._socket_path]
            with ThreadPoolExecutor(max_workers=8) as pool:
                live = [s for s in pool.map(_ask, sockets) if s is not None]
            return live + _published(self.directory)

    def close(self) -> None:
        """Leave this worker's counters for the workers that remain, then stop serving."""
        with _locked(self.directory, fcntl.LOCK_EX):
            final = kept_after_exit(self._snapshot())
            _write_new(self.directory / f"{self.worker_id}.final.json", final)
            self._stop_serving()
            _compact(self.directory)

    def _stop_serving(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            self._socket_path.unlink()


_LOCK_FILE = "exchange.lock"
_RETIRED = "retired.json"


@contextlib.contextmanager
def _locked(directory: Path, mode: int) -> Iterator[None]:
    with (directory / _LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, mode)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _published(directory: Path) -> list[Snapshot]:
    """retired.json and any final file not yet folded into it (call with the lock held)."""
    paths = sorted(directory.glob("*.final.json"))
    retired = directory / _RETIRED
    if retired.exists():
        paths.append(retired)
    return [_read_final(path) for path in paths]


def _compact(directory: Path) -> None:
    """Fold the final files into retired.json (call with the lock held exclusively)."""
    finals = sorted(directory.glob("*.final.json"))
    if not finals:
        return
    entries, families = merge(_empty_snapshot(), _published(directory))
    temporary = directory / f"{_RETIRED}.{uuid.uuid4().hex}.tmp"
    temporary.write_text(json.dumps(kept_after_exit(snapshot_of(entries, families))))
    temporary.replace(directory / _RETIRED)
    for path in finals:
        path.unlink()


def _write_new(path: Path, snapshot: Snapshot) -> None:
    """Write `path` whole or not at all, and never over an existing file."""
    temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps(snapshot))
    try:
        os.link(temporary, path)  # fails if path exists
    finally:
        temporary.unlink()


def _empty_snapshot() -> Snapshot:
    return {"entries": [], "families": []}


class _SnapshotServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, snapshot: Callable[[], Snapshot]) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.snapshot = snapshot
        super().__init__(path, _SnapshotHandler)


class _SnapshotHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server: _SnapshotServer = self.server  # type: ignore[assignment]
        try:
            self.wfile.write(marshal.dumps(server.snapshot()))
        except Exception:
            log.exception("serving the metrics snapshot to a peer worker failed")


def _ask(path: Path) -> Snapshot | None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
            peer.settimeout(PEER_TIMEOUT_SECONDS)
            peer.connect(str(path))
            chunks = []
            while chunk := peer.recv(1 << 16):
                chunks.append(chunk)
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a worker that died without closing
        return None
    except OSError as error:
        log.warning("peer worker %s did not answer: %s", path.name, error)
        return None
    try:
        snapshot: Snapshot = marshal.loads(b"".join(chunks))
    except (EOFError, ValueError, TypeError) as error:  # it failed while answering, and logged why
        log.warning("peer worker %s sent no snapshot: %s", path.name, error)
        return None
    return snapshot


def _read_final(path: Path) -> Snapshot:
    snapshot: Snapshot = json.loads(path.read_text())
    return snapshot


# --- snapshots: plain data of the aggregator entries and the registry's families --------------
# Files hold them as JSON. Between live workers (the same interpreter, spawned by one master) they
# travel as marshal, which writes and reads them several times faster: the exchange's cost is
# most of what a scrape under several workers adds to one worker's.


def snapshot_of(
    entries: Iterable[Entry], families: Iterable[MetricFamily], modes: GaugeModes | None = None
) -> Snapshot:
    modes = modes or GaugeModes()
    return {
        "pid": os.getpid(),
        "entries": [_entry_json(e) for e in entries],
        "families": [_family_json(f, _mode(f, modes)) for f in families],
    }


class MergedFamily(MetricFamily):
    """A family merged from several workers; it keeps its mode for when it is merged again."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data["name"], data["documentation"], data["type"], data["unit"])
        self.mode: str = data["mode"]


def _mode(family: MetricFamily, modes: GaugeModes) -> str:
    if isinstance(family, MergedFamily):
        return family.mode
    return modes.mode(family.name, family.type)


def merge(own: Snapshot, peers: Iterable[Snapshot]) -> tuple[list[Entry], list[MetricFamily]]:
    """The sum of all workers' request metrics, and their families merged by their modes."""
    return merge_into([], own, peers)


def merge_into(
    own_entries: list[Entry], own: Snapshot, peers: Iterable[Snapshot]
) -> tuple[list[Entry], list[MetricFamily]]:
    """As merge, with this worker's entries given as they are (copies it may add into)."""
    snapshots = [own, *peers]
    entries = {(e.method, e.endpoint): e for e in own_entries}
    for snapshot in snapshots:
        for data in snapshot["entries"]:
            _add_entry(entries, data)
    families: dict[str, MergedFamily] = {}
    for snapshot in snapshots:
        for data in snapshot["families"]:
            _add_family(families, data, snapshot)
    merged: list[MetricFamily] = list(families.values())
    return list(entries.values()), merged


def kept_after_exit(snapshot: Snapshot) -> Snapshot:
    """What a worker leaves behind when it exits: all but its live-only gauges."""
    families = [f for f in snapshot["families"] if f["mode"] not in LIVE_ONLY]
    return {**snapshot, "families": families, "exited": True}


def _entry_json(entry: Entry) -> list[Any]:
    """The entry as plain data, copied field by field: it may be a live entry still recorded into
    (copying here instead of through `entries()` halves a peer's snapshot time).

    Status codes stay ints: JSON writes them as strings, marshal as they are; both read back.
    """
    exemplars = [
        None if e is None else [e.trace_id, e.span_id, e.value, e.time_unix_nano]
        for e in list(entry.exemplars or ())
    ]
    statuses, buckets = dict(entry.statuses), list(entry.buckets)
    return [entry.method, entry.endpoint, statuses, buckets, entry.sum, exemplars]


def _entry(data: list[Any]) -> Entry:
    method, endpoint, statuses, buckets, total, exemplars = data
    return Entry(
        method,
        endpoint,
        {int(code): n for code, n in statuses.items()},
        list(buckets),
        total,
        _exemplars(exemplars),
    )


def _exemplars(data: list[Any]) -> list[RequestExemplar | None] | None:
    return [None if e is None else RequestExemplar(*e) for e in data] or None


def _add_entry(entries: dict[tuple[str, str], Entry], data: list[Any]) -> None:
    """Adds one snapshot entry to the totals, building an Entry only for a pair not seen yet."""
    method, endpoint, statuses, buckets, total_sum, exemplars = data
    total = entries.get((method, endpoint))
    if total is None:
        entries[(method, endpoint)] = _entry(data)
        return
    if len(buckets) != len(total.buckets):
        raise ValueError(f"{method} {endpoint}: {len(buckets)} buckets, not {len(total.buckets)}")
    counts = total.statuses
    for code, count in statuses.items():
        status = int(code)
        counts[status] = counts.get(status, 0) + count
    total.buckets = list(map(add, total.buckets, buckets))
    total.sum += total_sum
    if exemplars:
        total.exemplars = _newest(total.exemplars, _exemplars(exemplars))


def _newest(
    ours: list[RequestExemplar | None] | None, theirs: list[RequestExemplar | None] | None
) -> list[RequestExemplar | None] | None:
    if ours is None or theirs is None:
        return ours or theirs
    return [
        max((e for e in pair if e is not None), key=lambda e: e.time_unix_nano, default=None)
        for pair in zip(ours, theirs, strict=True)
    ]


def _family_json(family: MetricFamily, mode: str) -> dict[str, Any]:
    return {
        "name": family.name,
        "documentation": family.documentation,
        "type": family.type,
        "unit": family.unit,
        "mode": mode,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }


_COMBINE: Mapping[str, Callable[[float, float], float]] = {
    "sum": lambda a, b: a + b,
    "min": min,
    "max": max,
}


def _add_family(families: dict[str, MergedFamily], data: dict[str, Any], origin: Snapshot) -> None:
    family = families.get(data["name"])
    if family is None:
        family = families[data["name"]] = MergedFamily(data)
    mode = data["mode"]
    if mode in LIVE_ONLY and origin.get("exited"):
        return
    combine = None if mode in PER_WORKER else _COMBINE[mode.removeprefix("live")]
    index = {(s.name, tuple(sorted(s.labels.items()))): i for i, s in enumerate(family.samples)}
    for name, labels, value in data["samples"]:
        # Quantiles cannot be added up: each worker's stays its own, as in the `all` mode.
        if combine is None or "quantile" in labels:
            # A sample merged before keeps the pid it was given then.
            family.add_sample(name, {"pid": str(origin.get("pid")), **labels}, value)
        else:
            _combine(family, index, (name, labels, value), combine)


def _combine(
    family: MetricFamily,
    index: dict[tuple[str, tuple[tuple[str, str], ...]], int],
    sample: tuple[str, dict[str, str], float],
    combine: Callable[[float, float], float],
) -> None:
    name, labels, value = sample
    key = (name, tuple(sorted(labels.items())))
    position = index.get(key)
    if position is None:
        index[key] = len(family.samples)
        family.add_sample(name, labels, value)
        return
    current = family.samples[position]
    # A start time (`_created`) is the earliest worker's, not a sum of times.
    how = min if name.endswith("_created") else combine
    family.samples[position] = current._replace(value=how(current.value, value))
