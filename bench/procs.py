"""Processes the harness starts: pinned to a core, polled until ready, always killed."""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from bench.settings import ROOT

SERVER_CORE = 0
LOAD_CORE = 1
_PR_SET_PDEATHSIG = 1


class BenchError(RuntimeError):
    """The harness cannot measure: a tool is missing or a process misbehaved."""


def require_tools() -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        raise BenchError(
            f"missing {', '.join(missing)}: install the Debian packages wrk and util-linux"
        )
    if (os.cpu_count() or 1) < 2:
        raise BenchError("needs at least 2 cores: the server runs on core 0, the load on core 1")


def pinned(core: int, argv: Sequence[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv]


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def uvicorn(app: str, port: int, workers: int = 1) -> list[str]:
    argv = python_module(
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    )
    return [*argv, "--workers", str(workers)] if workers > 1 else argv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without any OTEL_* or service settings, plus `extra`."""
    dropped = ("OTEL_", "DATABASE_URL", "REDIS_URL", "DATA_DIR", "PROMETHEUS_MULTIPROC")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(dropped)}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def _die_with_parent() -> None:
    # A harness killed with SIGKILL still takes its servers down with it.
    with contextlib.suppress(OSError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Processes:
    """Starts long-lived children in their own process groups; `close()` kills every one left."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._running: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        log = (self._log_dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self._running.append(proc)
        return proc

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self._log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc in self._running:
            self._running.remove(proc)
        _terminate(proc)

    def close(self) -> None:
        while self._running:
            self.stop(self._running[-1])

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # the group we created for it, no one else's
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)


def get(port: int, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_http(
    proc: subprocess.Popen[bytes], port: int, path: str, timeout: float = 30.0, poll: float = 0.005
) -> float:
    """Seconds until `path` answers 200; raises if the process exits or the time runs out."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise BenchError(f"process exited with {proc.returncode} before {path} answered")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if get(port, path)[0] == 200:
                return time.perf_counter() - start
        time.sleep(poll)
    raise BenchError(f"{path} did not answer 200 within {timeout:.0f} s")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds of every live process in a process group: a server and all its workers.

    The group is the session `Processes.start` created, so it holds the uvicorn supervisor, its
    workers and multiprocessing's helpers, and nothing of anyone else's.
    """
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid:  # fields[0] is the state; then ppid, pgrp
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def wait_quiet(pgid: int, timeout: float = 60.0, poll: float = 0.25) -> None:
    """Until the group has been idle (under 2% of a core) for two polls: every worker started."""
    quiet, last = 0, group_cpu_seconds(pgid)
    deadline = time.monotonic() + timeout
    while quiet < 2:
        if time.monotonic() > deadline:
            raise BenchError(f"the server's processes were still busy after {timeout:.0f} s")
        time.sleep(poll)
        now = group_cpu_seconds(pgid)
        quiet = quiet + 1 if now - last < 0.02 * poll else 0
        last = now


def group_pids(pgid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rpartition(")")[2].split()[2]) == pgid:
                pids.append(int(stat.parent.name))
    return pids


def repeat_get(port: int, paths: Sequence[str], times: int) -> None:
    """Sends `times` keep-alive GETs to each path: creates series and warms caches."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for _ in range(times):
            for path in paths:
                conn.request("GET", path)
                conn.getresponse().read()
    finally:
        conn.close()


@contextlib.contextmanager
def started(
    procs: Processes, name: str, argv: Sequence[str], env: Mapping[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    proc = procs.start(name, argv, env)
    try:
        yield proc
    finally:
        procs.stop(proc)
