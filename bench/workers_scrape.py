"""One `/metrics` scrape of a server with several workers against the same server with one.

Both servers run at once on the server core, hold the same request series in every worker
(`bench/apps/ours_series.py`) and are scraped in turn over HTTP: the difference is the worker
exchange, the asking of every peer and the merging of their snapshots.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.procs import (
    SERVER_CORE,
    BenchError,
    Processes,
    clean_env,
    free_port,
    get,
    group_cpu_seconds,
    pinned,
    uvicorn,
    wait_http,
    wait_quiet,
)
from bench.settings import Settings

APP = "bench.apps.ours_series:app"
_COUNT = re.compile(
    rb'^fastapi_requests_total\{[^}]*endpoint="/bench/00000/\{item_id\}"[^}]*\} (\S+)$', re.M
)


def measure(
    settings: Settings, procs: Processes, progress: Callable[[str], None]
) -> dict[str, Any]:
    series, workers = settings.workers_scrape_series, settings.workers_scrape_workers
    progress(f"scrape under {workers} workers: {series:,} series")
    env = clean_env({"BENCH_SERIES": str(series)})
    servers = {}
    for name, count in (("single", 1), ("several", workers)):
        port = free_port()
        argv = pinned(SERVER_CORE, uvicorn(APP, port, count))
        proc = procs.start(f"scrape-{name}", argv, env)
        servers[name] = (proc, port, count)
    try:
        for proc, port, _ in servers.values():
            wait_http(proc, port, "/ping", timeout=60)
            wait_quiet(proc.pid)
        _check_merged(servers["single"][1], servers["several"][1], workers)
        times: dict[str, list[float]] = {name: [] for name in servers}
        cpu = dict.fromkeys(servers, 0.0)
        sizes: dict[str, int] = {}
        for _ in range(settings.workers_scrape_repeats):  # interleaved: the same noise for both
            for name, (proc, port, _) in servers.items():
                before = group_cpu_seconds(proc.pid)
                seconds, body = _scrape(port)
                cpu[name] += group_cpu_seconds(proc.pid) - before
                times[name].append(seconds)
                sizes[name] = len(body)
    finally:
        for proc, _, _ in servers.values():
            procs.stop(proc)
    return {
        "workers": workers,
        **{name: _summary(times[name], cpu[name], sizes[name], series) for name in servers},
    }


def _scrape(port: int) -> tuple[float, bytes]:
    start = time.perf_counter()
    status, body = get(port, "/metrics")
    seconds = time.perf_counter() - start
    if status != 200:
        raise BenchError(f"/metrics answered {status}")
    return seconds, body


def _check_merged(single_port: int, several_port: int, workers: int) -> None:
    """Every worker's series are in the merged scrape: its counts are `workers` times one's."""
    one, merged = _count(single_port), _count(several_port)
    if merged != one * workers:
        raise BenchError(
            f"the {workers}-worker scrape counts {merged} where {workers} x {one} was expected: "
            "not every worker answered the exchange"
        )


def _count(port: int) -> float:
    status, body = get(port, "/metrics")
    found = _COUNT.search(body) if status == 200 else None
    if found is None:
        raise BenchError(f"/metrics ({status}) has no request series of the recorded label sets")
    return float(found.group(1))


def _summary(times: list[float], cpu_s: float, size: int, series: int) -> dict[str, Any]:
    ordered = sorted(times)
    return {
        "cpu_ms": cpu_s / len(times) * 1e3,  # all the server's processes, per scrape
        "p50_ms": statistics.median(times) * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1e3,
        "max_ms": ordered[-1] * 1e3,
        "scrapes": len(times),
        "bytes": size,
        "series": series,
    }
