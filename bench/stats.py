"""Samples of one variant on one route, and their summary: medians, spread, ratios to bare."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from bench.load import WrkResult


@dataclass(frozen=True)
class Sample:
    wrk: WrkResult
    cpu_s: float  # the server's CPU time (user + system, all threads) during the wrk run

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s / max(self.wrk.requests, 1) * 1e6

    @property
    def core_share(self) -> float:
        """How much of its core the server got: near 1 when nothing else competed for it."""
        return self.cpu_s / self.wrk.seconds


@dataclass(frozen=True)
class RouteSummary:
    rps: float
    rps_min: float
    rps_max: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # CPU time per request: steadier than req/s on a shared machine
    core_share: float
    errors: int
    samples: int
    rps_ratio: float | None = None
    p50_ratio: float | None = None
    p99_ratio: float | None = None
    cpu_ratio: float | None = None


def summarise(
    samples: Mapping[str, Mapping[str, Sequence[Sample]]], baselines: Mapping[str, str]
) -> dict[str, dict[str, RouteSummary]]:
    """Per variant and route: medians over the rounds, and ratios to its baseline's medians."""
    medians = {
        name: {route: _median(runs) for route, runs in routes.items() if runs}
        for name, routes in samples.items()
    }
    return {
        name: {
            route: _ratios(s, medians.get(baselines[name], {}).get(route))
            for route, s in routes.items()
        }
        for name, routes in medians.items()
    }


def _median(samples: Sequence[Sample]) -> RouteSummary:
    rps = [s.wrk.rps for s in samples]
    return RouteSummary(
        rps=statistics.median(rps),
        rps_min=min(rps),
        rps_max=max(rps),
        p50_ms=statistics.median(s.wrk.p50_ms for s in samples),
        p99_ms=statistics.median(s.wrk.p99_ms for s in samples),
        cpu_us=statistics.median(s.cpu_us_per_request for s in samples),
        core_share=statistics.median(s.core_share for s in samples),
        errors=sum(s.wrk.errors for s in samples),
        samples=len(samples),
    )


def _ratios(summary: RouteSummary, bare: RouteSummary | None) -> RouteSummary:
    if bare is None:
        return summary
    return replace(
        summary,
        rps_ratio=summary.rps / bare.rps,
        p50_ratio=summary.p50_ms / bare.p50_ms,
        p99_ratio=summary.p99_ms / bare.p99_ms,
        cpu_ratio=summary.cpu_us / bare.cpu_us,
    )
