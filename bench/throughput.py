"""Throughput and latency: every variant under wrk, interleaved over rounds, medians per route."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.load import WrkResult, run_wrk, wrk_command
from bench.procs import (
    SERVER_CORE,
    BenchError,
    Processes,
    clean_env,
    cpu_seconds,
    free_port,
    get,
    pinned,
    repeat_get,
    started,
    uvicorn,
    wait_http,
)
from bench.settings import ITEM_PATH, PING_PATH, Settings
from bench.sink import SinkClient
from bench.stats import Sample
from bench.variants import BARE, Variant

ROUTES = (PING_PATH, ITEM_PATH)  # every variant must answer both, whichever are loaded
WARMUP_REQUESTS = 200  # per route, before any wrk run: creates the series, fills caches


@dataclass
class VariantRuns:
    variant: Variant
    status: str = "ok"  # ok | unavailable | failed
    reason: str = ""
    runs: dict[str, list[Sample]] = field(default_factory=dict)
    pushes: dict[str, int] = field(default_factory=dict)  # OTLP requests the sink got, by path

    def fail(self, reason: str) -> None:
        self.status, self.reason = "failed", reason


@dataclass(frozen=True)
class Rig:
    """What every run needs: the settings, the process keeper, the OTLP sink."""

    settings: Settings
    procs: Processes
    sink: SinkClient


def measure(
    rig: Rig, variants: Sequence[Variant], progress: Callable[[str], None]
) -> list[VariantRuns]:
    routes = rig.settings.routes
    results = [VariantRuns(v, runs={route: [] for route in routes}) for v in variants]
    for result in results:
        reason = result.variant.unavailable()
        if reason:
            result.status, result.reason = "unavailable", reason
    rounds = rig.settings.rounds
    for round_no in range(rounds):
        order = routes if round_no % 2 == 0 else routes[::-1]
        for result in _rotate(results, round_no):
            if result.status == "ok":
                progress(f"round {round_no + 1}/{rounds}: {result.variant.name}")
                _run_guarded(rig, result, order)
    return results


def _rotate(items: list[VariantRuns], by: int) -> list[VariantRuns]:
    """Each round starts one variant later, so no variant always runs right after another."""
    by %= len(items)
    return items[by:] + items[:by]


def _run_guarded(rig: Rig, result: VariantRuns, routes: Sequence[str]) -> None:
    try:
        _run_once(rig, result, routes)
    except BenchError as error:
        tail = rig.procs.log_tail(result.variant.name)
        result.fail(f"{error}" + (f"\n{tail}" if tail else ""))
        if result.variant.name == BARE:
            message = f"the bare app failed, nothing to compare with: {result.reason}"
            raise BenchError(message) from error


def _run_once(rig: Rig, result: VariantRuns, routes: Sequence[str]) -> None:
    variant, port, settings = result.variant, free_port(), rig.settings
    argv = pinned(SERVER_CORE, uvicorn(variant.app, port))
    env = clean_env(variant.environment(rig.sink.endpoint))
    with started(rig.procs, variant.name, argv, env) as proc:
        wait_http(proc, port, PING_PATH)
        check_answers(variant, port)
        before = rig.sink.received()
        url = f"http://127.0.0.1:{port}"
        if settings.warmup_s:
            _wrk(url + routes[0], settings.warmup_s, settings)
        for route in routes:
            result.runs[route].append(_sample(proc.pid, url + route, settings))
        _count_pushes(result, rig.sink, before)


def _sample(server_pid: int, url: str, settings: Settings) -> Sample:
    """One wrk run, with the CPU time the server spent during it."""
    cpu_before = cpu_seconds(server_pid)
    wrk = _wrk(url, settings.duration_s, settings)
    return Sample(wrk, cpu_seconds(server_pid) - cpu_before)


def _wrk(url: str, seconds: int, settings: Settings) -> WrkResult:
    return run_wrk(wrk_command(url, seconds, settings.connections), timeout=seconds + 30)


def check_answers(variant: Variant, port: int) -> None:
    """Both routes answer 200, and the variant's metrics show up where it serves them."""
    for route in ROUTES:
        status, body = get(port, route)
        if status != 200:
            raise BenchError(f"GET {route} answered {status}: {body[:200]!r}")
    repeat_get(port, ROUTES, WARMUP_REQUESTS)
    if variant.probe is None:
        return
    status, body = get(port, "/metrics")
    if status != 200 or variant.probe.encode() not in body:
        raise BenchError(f"GET /metrics ({status}) does not show {variant.probe!r}")


def _count_pushes(result: VariantRuns, sink: SinkClient, before: dict[str, int]) -> None:
    """The sink must have received each kind of export the variant pushes (waits up to 3 s)."""
    deadline = time.monotonic() + 3.0
    while True:
        after = sink.received()
        delta = {p: after.get(p, 0) - before.get(p, 0) for p in result.variant.pushes}
        if all(delta.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for path, count in delta.items():
        result.pushes[path] = result.pushes.get(path, 0) + count
    missing = [p for p, n in delta.items() if n == 0]
    if missing:
        raise BenchError(f"the OTLP sink received nothing on {', '.join(missing)}")
