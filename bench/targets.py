"""The targets, checked against one run's results (the JSON the harness writes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench import instructions

Results = dict[str, Any]


@dataclass(frozen=True)
class Target:
    name: str
    wanted: str
    measured: str
    met: bool | None  # None: not measured in this run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RatioTarget:
    """A variant's summary ratio to its baseline, on every route it loads, against a bound."""

    title: str
    variant: str
    key: str  # rps_ratio | p99_ratio | capacity (1 / cpu_ratio)
    bound: float

    @property
    def at_least(self) -> bool:
        return self.key != "p99_ratio"


RATIO_TARGETS = (
    RatioTarget("Metrics only, in-process: throughput", "ours", "rps_ratio", 0.95),
    RatioTarget("Metrics only, in-process: p99 latency", "ours", "p99_ratio", 1.10),
    RatioTarget("Metrics + traces, 100% sampled: throughput", "ours-traces", "rps_ratio", 0.70),
    RatioTarget("Metrics + traces, 100% sampled: p99 latency", "ours-traces", "p99_ratio", 1.6),
    RatioTarget("Metrics + traces, 10% sampled: throughput", "ours-traces-10", "rps_ratio", 0.92),
    RatioTarget("Metrics + traces, 10% sampled: p99 latency", "ours-traces-10", "p99_ratio", 1.2),
    RatioTarget("OTLP metrics path: throughput", "ours-otlp", "rps_ratio", 0.90),
    RatioTarget("Memo service, telemetry on vs off: throughput", "memo", "rps_ratio", 0.95),
    RatioTarget("Memo service, telemetry on vs off: p99 latency", "memo", "p99_ratio", 1.10),
    RatioTarget("Memo service, 4 workers, on vs off: throughput", "memo-w4", "rps_ratio", 0.95),
    RatioTarget("Memo service, 4 workers, on vs off: p99 latency", "memo-w4", "p99_ratio", 1.10),
    RatioTarget(
        "Memo service traced 10% (SQL, Redis spans) vs off: throughput by CPU per request",
        "memo-traces-10",
        "capacity",
        0.95,
    ),
    RatioTarget(
        "Memo service traced 10% (SQL, Redis spans) vs off: p99 latency",
        "memo-traces-10",
        "p99_ratio",
        1.15,
    ),
)
WORKERS_SCRAPE_BOUND = 2.0


def evaluate(results: Results) -> list[Target]:
    ratios = [_ratio(results, target) for target in RATIO_TARGETS]
    return [*ratios, _scrape(results), *_workers_scrape(results), _memory(results)]


def _variant(results: Results, name: str) -> dict[str, Any] | None:
    for variant in results.get("throughput", {}).get("variants", []):
        if variant["name"] == name:
            return dict(variant)
    return None


def _ratio(results: Results, target: RatioTarget) -> Target:
    bound = f"{'at least' if target.at_least else 'at most'} {target.bound:.2f}"
    variant = _variant(results, target.variant)
    baseline = variant["baseline"] if variant else "its baseline"
    wanted = f"{bound} of `{baseline}`, on every route"
    if variant is None or variant["status"] != "ok":
        why = variant["reason"].splitlines()[0] if variant else "not run"
        return Target(target.title, wanted, f"not measured: {why}", None)
    ratios = {route: _value(s, target.key) for route, s in variant["summary"].items()}
    measured = ", ".join(f"{route} {value:.2f}" for route, value in ratios.items())
    if target.key == "rps_ratio":
        measured += f" (1 / CPU per request: {_capacity(variant)})"
    elif target.key == "capacity":
        measured += (
            f" (req/s: {', '.join(_x(s['rps_ratio']) for s in variant['summary'].values())})"
        )
    if target.key != "p99_ratio" and (counted := _instructions(results, target.variant)):
        measured += f" (instructions: {counted})"
    if any(value is None for value in ratios.values()):
        return Target(target.title, wanted, f"not measured: no {baseline} in this run", None)
    met = all(v >= target.bound if target.at_least else v <= target.bound for v in ratios.values())
    return Target(target.title, wanted, measured, met)


def _instructions(results: Results, variant: str) -> str:
    """The variant's base's instructions per request over its own, by route, if counted."""
    counted = instructions.ratios(results.get("instructions") or [])
    return ", ".join(f"{ratio:.3f}" for c, ratio in counted if c["variant"] == variant)


def _value(summary: dict[str, Any], key: str) -> float | None:
    if key == "capacity":
        return None if summary["cpu_ratio"] is None else 1 / summary["cpu_ratio"]
    value: float | None = summary[key]
    return value


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _capacity(variant: dict[str, Any]) -> str:
    """The throughput ratio a full core would give: the steadier figure on a shared machine."""
    return ", ".join(_x(_value(s, "capacity")) for s in variant["summary"].values())


def _scrape(results: Results) -> Target:
    title, wanted = "Scrape of ~20k series", "no slower than prometheus_client"
    rows = results.get("scrape") or []
    if not rows:
        return Target(title, wanted, "not measured", None)
    row = max(rows, key=lambda r: r["target_series"])
    ours, base = row["ours"]["ms"], row["prometheus_client"]["ms"]
    measured = f"{ours:.1f} ms vs {base:.1f} ms at {row['ours']['series']} series"
    return Target(title, wanted, measured, ours <= base)


def _workers_scrape(results: Results) -> list[Target]:
    wanted = f"at most {WORKERS_SCRAPE_BOUND:.0f}x the single worker's"
    data = results.get("workers_scrape")
    if not data:
        return [Target("Scrape under 4 workers", wanted, "not measured", None)]
    single, several = data["single"], data["several"]
    targets = []
    for key in ("p50_ms", "p99_ms"):
        ratio = several[key] / single[key]
        measured = (
            f"{ratio:.2f}x: {several[key]:.1f} ms vs {single[key]:.1f} ms "
            f"at {several['series']:,} series (CPU per scrape, all processes: "
            f"{several['cpu_ms'] / single['cpu_ms']:.2f}x)"
        )
        title = f"Scrape under {data['workers']} workers: {key[:3]}"
        targets.append(Target(title, wanted, measured, ratio <= WORKERS_SCRAPE_BOUND))
    return targets


def _memory(results: Results) -> Target:
    title, wanted = "RSS growth under the cardinality flood", "under 10 MB"
    runs = {run["variant"]: run for run in results.get("memory") or []}
    if "ours" not in runs:
        return Target(title, wanted, "not measured", None)
    ours = runs["ours"]
    measured = f"{ours['growth_mb']:+.2f} MB after {ours['requests']:,} requests"
    return Target(title, wanted, measured, ours["growth_mb"] < 10.0)
