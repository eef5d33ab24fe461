"""The measurements as plain JSON data: what the report, the chart and the targets read."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bench.memory import MemoryRun
from bench.settings import ROOT, Settings
from bench.startup import StartupResult
from bench.stats import Sample, summarise
from bench.throughput import VariantRuns

Data = dict[str, Any]


def settings_data(settings: Settings) -> Data:
    data = dataclasses.asdict(settings)
    data["skip"] = sorted(settings.skip)
    data["outputs"] = {k: str(Path(v).relative_to(ROOT)) for k, v in data["outputs"].items()}
    return data


def throughput_data(runs: list[VariantRuns]) -> Data:
    baselines = {r.variant.name: r.variant.baseline for r in runs}
    summaries = summarise({r.variant.name: r.runs for r in runs if r.status == "ok"}, baselines)
    routes = dict.fromkeys(route for r in runs for route in r.runs)
    return {
        "routes": list(routes),
        "variants": [_variant_data(r, summaries.get(r.variant.name, {})) for r in runs],
    }


def _variant_data(runs: VariantRuns, summary: dict[str, Any]) -> Data:
    return {
        "name": runs.variant.name,
        "label": runs.variant.label,
        "app": runs.variant.app,
        "baseline": runs.variant.baseline,
        "workers": runs.variant.workers,
        "status": runs.status,
        "reason": runs.reason,
        "pushes": runs.pushes,
        "summary": {route: dataclasses.asdict(s) for route, s in summary.items()},
        "runs": {route: [_sample_data(s) for s in samples] for route, samples in runs.runs.items()},
    }


def _sample_data(sample: Sample) -> Data:
    return {**dataclasses.asdict(sample.wrk), "server_cpu_s": sample.cpu_s}


def memory_data(run: MemoryRun) -> Data:
    return {**dataclasses.asdict(run), "growth_mb": run.growth_mb}


def startup_data(result: StartupResult) -> Data:
    return {**dataclasses.asdict(result), "median_s": result.median_s}
