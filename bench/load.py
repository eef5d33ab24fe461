"""wrk, pinned to the load core: one command, and its `--latency` report parsed."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.procs import LOAD_CORE, BenchError, pinned

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_LATENCY = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.M)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass(frozen=True)
class WrkResult:
    rps: float
    requests: int
    seconds: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def wrk_command(
    url: str,
    duration_s: int,
    connections: int,
    script: Path | None = None,
    script_args: Sequence[str] = (),
) -> list[str]:
    # wrk's default 2 s timeout counts a slow answer as a socket error: SQLite's writes (fsync on
    # a shared disk) sometimes take longer under load, while the server still answers them.
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "--timeout", "10s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    return pinned(LOAD_CORE, argv)


def run_wrk(argv: Sequence[str], timeout: float) -> WrkResult:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    return parse_wrk(done.stdout)


def parse_wrk(text: str) -> WrkResult:
    latency = {int(p): float(v) * _UNITS[u] for p, v, u in _LATENCY.findall(text)}
    rps, total = _RPS.search(text), _TOTAL.search(text)
    if rps is None or total is None or len(latency) != 4:
        raise BenchError(f"cannot read wrk's report:\n{text}")
    non_2xx = _NON_2XX.search(text)
    socket = _SOCKET.search(text)
    return WrkResult(
        rps=float(rps.group(1)),
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _UNITS[total.group(3)] / 1e3,
        p50_ms=latency[50],
        p75_ms=latency[75],
        p90_ms=latency[90],
        p99_ms=latency[99],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
    )
