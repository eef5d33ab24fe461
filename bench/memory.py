"""Resident memory under the cardinality flood: ours and the prometheus_client middleware, each in
a fresh server process."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.procs import (
    LOAD_CORE,
    SERVER_CORE,
    BenchError,
    Processes,
    clean_env,
    free_port,
    pinned,
    python_module,
    rss_bytes,
    started,
    uvicorn,
    wait_http,
)
from bench.settings import PING_PATH, Settings
from bench.throughput import check_answers
from bench.variants import BY_NAME

SAMPLE_EVERY_S = 0.5
MB = 1024 * 1024


@dataclass
class MemoryRun:
    variant: str
    rss_start_mb: float = 0.0
    rss_warm_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_peak_mb: float = 0.0
    requests: int = 0
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    samples_mb: list[float] = field(default_factory=list)

    @property
    def growth_mb(self) -> float:
        return self.rss_end_mb - self.rss_warm_mb


def measure(
    settings: Settings, procs: Processes, progress: Callable[[str], None]
) -> list[MemoryRun]:
    runs = []
    for name in settings.memory_variants:
        progress(f"memory: {name}, {settings.memory_requests} requests")
        runs.append(_measure_one(name, settings, procs))
    return runs


def _measure_one(name: str, settings: Settings, procs: Processes) -> MemoryRun:
    variant, port, run = BY_NAME[name], free_port(), MemoryRun(name)
    argv = pinned(SERVER_CORE, uvicorn(variant.app, port))
    with started(procs, f"memory-{name}", argv, clean_env()) as server:
        wait_http(server, port, PING_PATH)
        check_answers(variant, port)
        run.rss_start_mb = rss_bytes(server.pid) / MB
        _flood(procs, port, settings.memory_warmup_requests, server.pid, [])
        run.rss_warm_mb = rss_bytes(server.pid) / MB
        summary = _flood(procs, port, settings.memory_requests, server.pid, run.samples_mb)
        time.sleep(SAMPLE_EVERY_S)
        run.rss_end_mb = rss_bytes(server.pid) / MB
    run.rss_peak_mb = max([run.rss_end_mb, *run.samples_mb])
    run.requests, run.seconds = summary["requests"], summary["seconds"]
    run.statuses = summary["statuses"]
    if run.requests != settings.memory_requests or "5xx" in run.statuses:
        raise BenchError(f"memory flood on {name} went wrong: {summary}")
    return run


def _flood(
    procs: Processes, port: int, requests: int, server_pid: int, samples_mb: list[float]
) -> dict[str, Any]:
    """Runs the flood client on the load core, sampling the server's RSS until it is done."""
    argv = pinned(LOAD_CORE, python_module("bench.flood", str(port), str(requests)))
    with started(procs, "flood", argv, clean_env()) as client:
        deadline = time.monotonic() + 60 + requests / 100
        while client.poll() is None:
            if time.monotonic() > deadline:
                raise BenchError("the flood client did not finish in time")
            samples_mb.append(rss_bytes(server_pid) / MB)
            time.sleep(SAMPLE_EVERY_S)
        if client.returncode != 0:
            raise BenchError(f"the flood client failed:\n{procs.log_tail('flood')}")
        summary: dict[str, Any] = json.loads(procs.log_tail("flood", 1))
        return summary
