"""Throughput and latency: every variant under wrk, interleaved over rounds, medians per route."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from bench.apps.routes import ITEM_PATH, PING_PATH
from bench.load import WrkResult, run_wrk, wrk_command
from bench.procs import (
    SERVER_CORE,
    BenchError,
    Processes,
    clean_env,
    free_port,
    get,
    pinned,
    repeat_get,
    started,
    uvicorn,
    wait_http,
)
from bench.settings import Settings
from bench.variants import BARE, Variant

ROUTES = (PING_PATH, ITEM_PATH)
WARMUP_REQUESTS = 200  # per route, before any wrk run: creates the series, fills caches


class Sink:
    """The OTLP sink process, seen from the harness."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"

    def received(self) -> dict[str, int]:
        status, body = get(self.port, "/stats")
        if status != 200:
            raise BenchError(f"the OTLP sink answered {status}")
        requests: dict[str, int] = json.loads(body)["requests"]
        return requests


@dataclass
class VariantRuns:
    variant: Variant
    status: str = "ok"  # ok | unavailable | failed
    reason: str = ""
    runs: dict[str, list[WrkResult]] = field(default_factory=lambda: {r: [] for r in ROUTES})
    pushes: dict[str, int] = field(default_factory=dict)  # OTLP requests the sink got, by path

    def fail(self, reason: str) -> None:
        self.status, self.reason = "failed", reason


def measure(
    settings: Settings,
    variants: Sequence[Variant],
    procs: Processes,
    sink: Sink,
    progress: Callable[[str], None],
) -> list[VariantRuns]:
    results = [VariantRuns(v) for v in variants]
    for result in results:
        reason = result.variant.unavailable()
        if reason:
            result.status, result.reason = "unavailable", reason
    for round_no in range(settings.rounds):
        routes = ROUTES if round_no % 2 == 0 else ROUTES[::-1]
        for result in _rotate(results, round_no):
            if result.status != "ok":
                continue
            progress(f"round {round_no + 1}/{settings.rounds}: {result.variant.name}")
            _run_guarded(result, settings, routes, procs, sink)
    return results


def _rotate(items: list[VariantRuns], by: int) -> list[VariantRuns]:
    """Each round starts one variant later, so no variant always runs right after another."""
    by %= len(items)
    return items[by:] + items[:by]


def _run_guarded(
    result: VariantRuns, settings: Settings, routes: Sequence[str], procs: Processes, sink: Sink
) -> None:
    try:
        _run_once(result, settings, routes, procs, sink)
    except BenchError as error:
        tail = procs.log_tail(result.variant.name)
        result.fail(f"{error}" + (f"\n{tail}" if tail else ""))
        if result.variant.name == BARE:
            message = f"the bare app failed, nothing to compare with: {result.reason}"
            raise BenchError(message) from error


def _run_once(
    result: VariantRuns, settings: Settings, routes: Sequence[str], procs: Processes, sink: Sink
) -> None:
    variant, port = result.variant, free_port()
    argv = pinned(SERVER_CORE, uvicorn(variant.app, port))
    with started(procs, variant.name, argv, clean_env(variant.environment(sink.endpoint))) as proc:
        wait_http(proc, port, PING_PATH)
        check_answers(variant, port)
        before = sink.received()
        url = f"http://127.0.0.1:{port}"
        if settings.warmup_s:
            _wrk(url + routes[0], settings.warmup_s, settings)
        for route in routes:
            result.runs[route].append(_wrk(url + route, settings.duration_s, settings))
        _count_pushes(result, sink, before)


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


def _count_pushes(result: VariantRuns, sink: Sink, before: dict[str, int]) -> None:
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


@dataclass(frozen=True)
class RouteSummary:
    rps: float
    rps_min: float
    rps_max: float
    p50_ms: float
    p99_ms: float
    errors: int
    samples: int
    rps_ratio: float | None = None
    p50_ratio: float | None = None
    p99_ratio: float | None = None


def summarise(results: Sequence[VariantRuns]) -> dict[str, dict[str, RouteSummary]]:
    """Per variant and route: medians over the rounds, and ratios to the bare app's medians."""
    medians = {r.variant.name: _medians(r) for r in results if r.status == "ok"}
    bare = medians.get(BARE, {})
    out: dict[str, dict[str, RouteSummary]] = {}
    for name, routes in medians.items():
        out[name] = {route: _with_ratios(s, bare.get(route)) for route, s in routes.items()}
    return out


def _medians(result: VariantRuns) -> dict[str, RouteSummary]:
    out = {}
    for route, runs in result.runs.items():
        if not runs:
            continue
        rps = [r.rps for r in runs]
        out[route] = RouteSummary(
            rps=statistics.median(rps),
            rps_min=min(rps),
            rps_max=max(rps),
            p50_ms=statistics.median(r.p50_ms for r in runs),
            p99_ms=statistics.median(r.p99_ms for r in runs),
            errors=sum(r.errors for r in runs),
            samples=len(runs),
        )
    return out


def _with_ratios(summary: RouteSummary, bare: RouteSummary | None) -> RouteSummary:
    if bare is None:
        return summary
    return replace(
        summary,
        rps_ratio=summary.rps / bare.rps,
        p50_ratio=summary.p50_ms / bare.p50_ms,
        p99_ratio=summary.p99_ms / bare.p99_ms,
    )
