"""Time and size of one `/metrics` scrape at a given number of series: ours against a
prometheus_client registry holding the same label sets, both served by an app through ASGI; and
ours serving those series from a prometheus_client registry through the Prometheus bridge (the
cost of bridged families, paid at scrape time only).

`measure_sizes` runs `python -m bench.scrape SERIES REPEATS` pinned to the server core, one
process per size; each prints one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import prometheus_client
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram

from bench.apps.promclient import ContractMetrics, baseline_registry
from bench.apps.routes import add_metrics_route, build_app
from bench.asgi import request
from bench.procs import SERVER_CORE, BenchError, clean_env, pinned, python_module
from bench.settings import ROOT
from otel import TelemetryConfig, setup_telemetry
from otel.metrics.contract import DURATION_BUCKETS, REQUEST_DURATION, REQUESTS

# One (method, endpoint) pair with one status gives 18 series: 1 counter, 15 buckets, sum, count.
SERIES_PER_PAIR = 18
METHODS = ("GET", "POST", "PUT", "DELETE")

Record = Callable[[str, str, int, float], None]


def label_sets(series: int) -> list[tuple[str, str, int, float]]:
    pairs = max(1, round(series / SERIES_PER_PAIR))
    return [
        (METHODS[i % len(METHODS)], f"/bench/{i:05d}/{{item_id}}", 200, (i % 400) * 0.025)
        for i in range(pairs)
    ]


def ours() -> tuple[FastAPI, Record]:
    """Our app and the recorder its middleware records into."""
    app = build_app()
    setup_telemetry(app, TelemetryConfig())
    return app, ours_recorder(app)


def ours_recorder(app: FastAPI) -> Record:
    """The recorder `setup_telemetry` gave the app's middleware (found in the middleware stack)."""
    for middleware in app.user_middleware:
        recorder: Any = middleware.kwargs.get("recorder")
        if recorder is not None:
            record: Record = recorder.record
            return record
    raise RuntimeError("setup_telemetry added no middleware with a `recorder`")


def baseline() -> tuple[FastAPI, Record]:
    # Without the `_created` series the contract does not have, so both hold the same series.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = baseline_registry()
    app = build_app()
    add_metrics_route(app, registry)
    return app, ContractMetrics(registry).record


def bridged() -> tuple[FastAPI, Record]:
    """Our app with the same series in a bridged prometheus_client registry, named `club_*`
    (the contract's own names would be refused as defined twice)."""
    registry = CollectorRegistry()
    requests = Counter("club_requests_total", "Requests", REQUESTS.attributes, registry=registry)
    duration = Histogram(
        "club_request_duration_seconds",
        "Request duration",
        REQUEST_DURATION.attributes,
        buckets=DURATION_BUCKETS,
        registry=registry,
    )
    app = build_app()
    setup_telemetry(app, TelemetryConfig(), registries=[registry])

    def record(method: str, endpoint: str, status_code: int, seconds: float) -> None:
        requests.labels(method, endpoint, str(status_code)).inc()
        duration.labels(method, endpoint).observe(seconds)

    return app, record


def measure(series: int, repeats: int) -> dict[str, Any]:
    labels = label_sets(series)
    # baseline() turns `_created` off for every registry: build it before the bridged one.
    apps = {"ours": ours(), "prometheus_client": baseline(), "bridged": bridged()}
    for _, record in apps.values():
        for label_set in labels:
            record(*label_set)
    times: dict[str, list[float]] = {name: [] for name in apps}
    bodies: dict[str, bytes] = {}
    with asyncio.Runner() as runner:
        for name, (app, _) in apps.items():  # the first scrape warms up, and is not counted
            bodies[name] = runner.run(_scrape(app))[1]
        for _ in range(repeats):  # interleaved, so both see the same noise
            for name, (app, _) in apps.items():
                seconds, bodies[name] = runner.run(_scrape(app))
                times[name].append(seconds)
    return {
        "target_series": series,
        "pairs": len(labels),
        **{name: _summary(times[name], bodies[name]) for name in apps},
    }


async def _scrape(app: FastAPI) -> tuple[float, bytes]:
    start = time.perf_counter()
    status, body = await request(app, "/metrics")
    seconds = time.perf_counter() - start
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    return seconds, body


def _summary(times: list[float], body: bytes) -> dict[str, Any]:
    lines = [line for line in body.decode().splitlines() if line and not line.startswith("#")]
    return {
        "ms": statistics.median(times) * 1e3,
        "ms_min": min(times) * 1e3,
        "ms_max": max(times) * 1e3,
        "bytes": len(body),
        "series": len(lines),
        "request_series": sum(line.startswith("fastapi_") for line in lines),
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), int(sys.argv[2]))))


def measure_sizes(
    series: Sequence[int], repeats: int, progress: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Runs one worker process per size, pinned to the server core."""
    rows = []
    for size in series:
        progress(f"scrape: {size:,} series")
        argv = pinned(SERVER_CORE, python_module("bench.scrape", str(size), str(repeats)))
        done = subprocess.run(
            argv, capture_output=True, text=True, env=clean_env(), cwd=ROOT, timeout=600
        )
        if done.returncode != 0:
            raise BenchError(f"the scrape worker failed for {size} series:\n{done.stderr}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows
