"""Throughput and latency: every variant under wrk, interleaved over rounds, medians per route."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.load import WrkResult, run_wrk, wrk_command
from bench.memo import Request, memo_requests, warm_up
from bench.procs import (
    SERVER_CORE,
    BenchError,
    Processes,
    clean_env,
    free_port,
    get,
    group_cpu_seconds,
    group_pids,
    pinned,
    repeat_get,
    started,
    uvicorn,
    wait_http,
    wait_quiet,
)
from bench.settings import ITEM_PATH, PING_PATH, Settings
from bench.sink import SinkClient
from bench.stats import Sample
from bench.variants import BARE, Variant

ROUTES = (PING_PATH, ITEM_PATH)  # every variant must answer both, whichever are loaded
WARMUP_REQUESTS = 200  # per route, before any wrk run: creates the series, fills caches
MEMO_WARMUP_REQUESTS = 50  # the memo service's routes are slower; wrk's warm-up follows
PUSH_WAIT_S = 6.0  # longer than the batch span processor's 5 s schedule delay


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
    results = [
        VariantRuns(v, runs={route: [] for route in loaded_routes(v, rig.settings)})
        for v in variants
    ]
    for result in results:
        reason = result.variant.unavailable()
        if reason:
            result.status, result.reason = "unavailable", reason
    rounds = rig.settings.rounds
    for round_no in range(rounds):
        for result in _rotate(results, round_no):
            if result.status == "ok":
                progress(f"round {round_no + 1}/{rounds}: {result.variant.name}")
                routes = list(result.runs)
                _run_guarded(rig, result, routes if round_no % 2 == 0 else routes[::-1])
    return results


def loaded_routes(variant: Variant, settings: Settings) -> tuple[str, ...]:
    """The memo service's own routes, both even in a smoke run; the run's routes otherwise."""
    return variant.routes or settings.routes


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
    argv = pinned(SERVER_CORE, uvicorn(variant.app, port, variant.workers))
    with tempfile.TemporaryDirectory(prefix=f"bench-{variant.name}-") as data_dir:
        env = clean_env(variant.environment(rig.sink.endpoint, data_dir))
        with started(rig.procs, variant.name, argv, env) as proc:
            requests = _checked_requests(variant, proc, port)
            before = rig.sink.received()
            url = f"http://127.0.0.1:{port}"
            warmup_s = max(settings.warmup_s, 1 if variant.workers > 1 else 0)
            if warmup_s:  # with several workers, every one of them serves before it counts
                _wrk(url, requests[routes[0]], warmup_s, settings)
            for route in routes:
                result.runs[route].append(_sample(proc.pid, url, requests[route], settings))
            _count_pushes(result, rig.sink, before)


def _checked_requests(
    variant: Variant, proc: subprocess.Popen[bytes], port: int
) -> dict[str, Request]:
    """What wrk sends on each route, once the server answers as it should."""
    if not variant.is_memo_service:
        wait_http(proc, port, PING_PATH)
        check_answers(variant, port)
        return {route: Request(route) for route in ROUTES}
    wait_http(proc, port, "/health", timeout=60)
    if variant.workers > 1:
        wait_quiet(proc.pid)  # the other workers are still importing and migrating
        _check_workers(variant, proc.pid)
    requests = memo_requests(port)
    warm_up(port, requests, MEMO_WARMUP_REQUESTS)
    _check_probe(variant, port)
    return requests


def _check_workers(variant: Variant, pgid: int) -> None:
    """`--workers N` really runs N workers: the supervisor, N workers (and helpers) in its group."""
    if variant.workers > 1 and len(group_pids(pgid)) < variant.workers + 1:
        raise BenchError(f"expected {variant.workers} workers, found {group_pids(pgid)}")


def _sample(pgid: int, url: str, request: Request, settings: Settings) -> Sample:
    """One wrk run, with the CPU time the server (all its processes) spent during it."""
    cpu_before = group_cpu_seconds(pgid)
    wrk = _wrk(url, request, settings.duration_s, settings)
    return Sample(wrk, group_cpu_seconds(pgid) - cpu_before)


def _wrk(url: str, request: Request, seconds: int, settings: Settings) -> WrkResult:
    argv = wrk_command(url + request.path, seconds, settings.connections, request.script)
    return run_wrk(argv, timeout=seconds + 30)


def check_answers(variant: Variant, port: int) -> None:
    """Both routes answer 200, and the variant's metrics show up where it serves them."""
    for route in ROUTES:
        status, body = get(port, route)
        if status != 200:
            raise BenchError(f"GET {route} answered {status}: {body[:200]!r}")
    repeat_get(port, ROUTES, WARMUP_REQUESTS)
    _check_probe(variant, port)


def _check_probe(variant: Variant, port: int) -> None:
    if variant.probe is None:
        return
    status, body = get(port, "/metrics")
    if status != 200 or variant.probe.encode() not in body:
        raise BenchError(f"GET /metrics ({status}) does not show {variant.probe!r}")


def _count_pushes(result: VariantRuns, sink: SinkClient, before: dict[str, int]) -> None:
    """The sink must have received each kind of export the variant pushes (waits a while)."""
    deadline = time.monotonic() + PUSH_WAIT_S
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
