"""docs/performance.png: throughput and p99 of every variant relative to the bare app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

Results = dict[str, Any]
PANELS = (
    ("rps_ratio", "throughput / base (higher is better)"),
    ("p99_ratio", "p99 latency / base (lower is better)"),
    ("cpu_ratio", "CPU time per request / base (lower is better)"),
)


def draw(results: Results, path: Path) -> None:
    data = results["throughput"]
    variants = [v for v in data["variants"] if v["status"] == "ok"][::-1]
    routes = data["routes"]
    size = (16, 0.5 * len(variants) + 2)
    fig, axes = plt.subplots(1, len(PANELS), figsize=size, sharey=True)
    for axis, (key, title) in zip(axes, PANELS, strict=True):
        _panel(axis, variants, routes, key, title)
    axes[0].set_yticks(range(len(variants)), [v["label"] for v in variants])
    axes[-1].legend(loc="lower right", fontsize=8)
    fig.suptitle(
        f"{results['meta']['nproc']} cores, server on core 0, wrk on core 1, ratios to each "
        "variant's base; "
        f"{results['meta']['date']}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _panel(
    axis: Any, variants: list[dict[str, Any]], routes: list[str], key: str, title: str
) -> None:
    height = 0.8 / len(routes)
    for i, route in enumerate(routes):
        values = [v["summary"].get(route, {}).get(key) or 0.0 for v in variants]
        ys = [y + 0.4 - height * (i + 0.5) for y in range(len(variants))]  # first route on top
        bars = axis.barh(ys, values, height=height, label=f"GET {route}")
        axis.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    axis.axvline(1.0, color="black", linewidth=0.8)
    axis.set_title(title, fontsize=10)
    axis.margins(x=0.15)
