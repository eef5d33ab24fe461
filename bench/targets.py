"""The overhead targets, checked against one run's results (the JSON the harness writes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

Results = dict[str, Any]


@dataclass(frozen=True)
class Target:
    name: str
    wanted: str
    measured: str
    met: bool | None  # None: not measured in this run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# (title, variant, summary key, comparison, bound): the targets on throughput and latency.
RATIO_TARGETS = (
    ("Metrics only, in-process: throughput", "ours", "rps_ratio", ">=", 0.92),
    ("Metrics only, in-process: p99 latency", "ours", "p99_ratio", "<=", 1.15),
    ("Metrics + traces, 100% sampled: throughput", "ours-traces", "rps_ratio", ">=", 0.60),
    ("OTLP metrics path: throughput", "ours-otlp", "rps_ratio", ">=", 0.90),
)


def evaluate(results: Results) -> list[Target]:
    ratios = [_ratio(results, *target) for target in RATIO_TARGETS]
    return [*ratios, _scrape(results), _memory(results)]


def _variant(results: Results, name: str) -> dict[str, Any] | None:
    for variant in results.get("throughput", {}).get("variants", []):
        if variant["name"] == name:
            return dict(variant)
    return None


def _ratio(results: Results, title: str, name: str, key: str, op: str, bound: float) -> Target:
    wanted = f"{'at least' if op == '>=' else 'at most'} {bound:.2f} of bare, on every route"
    variant = _variant(results, name)
    if variant is None or variant["status"] != "ok":
        why = variant["reason"].splitlines()[0] if variant else "not run"
        return Target(title, wanted, f"not measured: {why}", None)
    ratios = {route: s[key] for route, s in variant["summary"].items()}
    measured = ", ".join(f"{route} {value:.2f}" for route, value in ratios.items())
    if key == "rps_ratio":
        measured += f" (1 / CPU per request: {_capacity(variant)})"
    met = all(v >= bound if op == ">=" else v <= bound for v in ratios.values())
    return Target(title, wanted, measured, met)


def _capacity(variant: dict[str, Any]) -> str:
    """The throughput ratio a full core would give: the steadier figure on a shared machine."""
    return ", ".join(f"{1 / s['cpu_ratio']:.2f}" for s in variant["summary"].values())


def _scrape(results: Results) -> Target:
    title, wanted = "Scrape of ~20k series", "no slower than prometheus_client"
    rows = results.get("scrape") or []
    if not rows:
        return Target(title, wanted, "not measured", None)
    row = max(rows, key=lambda r: r["target_series"])
    ours, base = row["ours"]["ms"], row["prometheus_client"]["ms"]
    measured = f"{ours:.1f} ms vs {base:.1f} ms at {row['ours']['series']} series"
    return Target(title, wanted, measured, ours <= base)


def _memory(results: Results) -> Target:
    title, wanted = "RSS growth under the cardinality flood", "under 10 MB"
    runs = {run["variant"]: run for run in results.get("memory") or []}
    if "ours" not in runs:
        return Target(title, wanted, "not measured", None)
    ours = runs["ours"]
    measured = f"{ours['growth_mb']:+.2f} MB after {ours['requests']:,} requests"
    return Target(title, wanted, measured, ours["growth_mb"] < 10.0)
