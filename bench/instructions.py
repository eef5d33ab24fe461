"""Instructions per request, counted by callgrind: what the code costs, whatever the host does.

On a shared machine the req/s and CPU time of one variant move by 20% from round to round, so a
ratio of 0.90 against 0.92 cannot be told apart. Valgrind's callgrind counts the instructions a
process executes, the same for the same code and input whatever else runs. Each variant's app is
driven in process (`bench.asgi`, no sockets or server) for two request counts; the difference,
divided by the difference in requests, is the cost of one request with start-up taken away. The
exporter thread's work counts too: tracing variants export to a discarding sink, in full batches
(the batch processor's timer is set beyond the run, since under callgrind the run is about 50
times slower and timed exports would come with a few spans each).

`python -m bench.instructions` prints the table; `python -m bench` records it (part
`instructions`).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from bench.procs import BenchError, clean_env
from bench.settings import FULL
from bench.variants import BY_NAME, MEMO_GET, MEMO_POST, MEMO_ROUTES, TRACES

_REQUESTS_FULL = (FULL.instruction_requests, FULL.instruction_memo_requests)

# Each variant, the routes it is driven on, and its base. The memo service runs with Redis:
# the traced variant's base is the same service with OTEL_SDK_DISABLED=true.
TOY_ROUTES = ("/ping", "/items/42")
JOBS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("bare", TOY_ROUTES, "bare"),
    ("ours", TOY_ROUTES, "bare"),
    ("ours-traces", TOY_ROUTES, "bare"),
    ("ours-traces-10", TOY_ROUTES, "bare"),
    ("memo-redis-off", MEMO_ROUTES, "memo-redis-off"),
    ("memo-traces-10", MEMO_ROUTES, "memo-redis-off"),
)
_COLLECTED = re.compile(r"Collected : (\d+)")


@dataclass(frozen=True)
class Count:
    variant: str
    route: str
    base: str
    per_request: float  # instructions; under a ratio sampler, the mix of the two below
    unsampled: float | None = None  # a ratio sampler's variant with no request sampled
    sampled: float | None = None  # ... and with every request sampled


def measure(
    sink_endpoint: str,
    progress: Callable[[str], None],
    toy_requests: tuple[int, int],
    memo_requests: tuple[int, int],
) -> list[Count]:
    """Every variant on each of its routes; two callgrind runs at a time (one per core).

    A request to the memo service costs about 20 times a toy one: it gets fewer requests.
    """
    if subprocess.run(["valgrind", "--version"], capture_output=True).returncode != 0:
        raise BenchError("missing valgrind: install the Debian package valgrind")
    for variant, _, _ in JOBS:
        if why := BY_NAME[variant].unavailable():
            raise BenchError(f"{variant}: {why}")
    jobs = [(variant, route, base) for variant, routes, base in JOBS for route in routes]
    runs = [
        _Run(variant, route, n, setting)
        for variant, route, _ in jobs
        for setting in _sampler_settings(variant)
        for n in (memo_requests if route in MEMO_ROUTES else toy_requests)
    ]
    progress(f"instructions: {len(runs)} callgrind runs for {len(jobs)} counts")
    with ThreadPoolExecutor(max_workers=2) as pool:
        counted = pool.map(lambda run: _instructions(run, sink_endpoint), runs)
        total = dict(zip(runs, counted, strict=True))
    return [_count(job, runs, total) for job in jobs]


@dataclass(frozen=True)
class _Run:
    variant: str
    route: str
    requests: int
    sampler_arg: str | None  # OTEL_TRACES_SAMPLER_ARG in place of the variant's; None: as is


def _sampler_settings(variant: str) -> tuple[str | None, ...]:
    """A ratio sampler's variant runs with no request sampled and with all: the seeded ids of a
    few hundred requests would sample anywhere from 5 to 15% of them, not the ratio."""
    return (None,) if _ratio(variant) is None else ("0", "1")


def _ratio(variant: str) -> float | None:
    env = BY_NAME[variant].env
    if env.get("OTEL_TRACES_SAMPLER") not in ("traceidratio", "parentbased_traceidratio"):
        return None
    return float(env.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))  # the specification's default


def _count(job: tuple[str, str, str], runs: Sequence[_Run], total: Mapping[_Run, int]) -> Count:
    variant, route, base = job

    def per_request(setting: str | None) -> float:
        low, high = (r for r in runs if (r.variant, r.route, r.sampler_arg) == (*job[:2], setting))
        return (total[high] - total[low]) / (high.requests - low.requests)

    ratio = _ratio(variant)
    if ratio is None:
        return Count(variant, route, base, per_request(None))
    unsampled, sampled = per_request("0"), per_request("1")
    return Count(
        variant, route, base, (1 - ratio) * unsampled + ratio * sampled, unsampled, sampled
    )


def _instructions(run: _Run, sink_endpoint: str) -> int:
    variant = BY_NAME[run.variant]
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as data_dir:
        env = clean_env(variant.environment(sink_endpoint, data_dir))
        env["PYTHONHASHSEED"] = "0"
        if run.sampler_arg is not None:
            env["OTEL_TRACES_SAMPLER_ARG"] = run.sampler_arg
        if "CACHE_NAMESPACE" in env:
            # Two runs at a time: a create in one bumps the cache generation the other's
            # reads depend on, and they would miss at random. Each run caches on its own.
            env["CACHE_NAMESPACE"] += "-" + os.path.basename(data_dir)
        if TRACES in variant.pushes:
            env["OTEL_BSP_SCHEDULE_DELAY"] = str(24 * 3600 * 1000)  # full batches only (above)
        argv = [*_CALLGRIND, sys.executable, "-m", "bench.instructions", "--drive"]
        done = subprocess.run(
            [*argv, variant.module, run.route, str(run.requests)],
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
            # The harness keeps to the load core; the two runs at a time take a core each.
            preexec_fn=lambda: os.sched_setaffinity(0, range(os.cpu_count() or 1)),
        )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise BenchError(f"callgrind on {run} failed: {done.stderr[-2000:]}")
    return int(found.group(1))


_CALLGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")


def drive(module: str, route: str, requests: int) -> None:
    """In the process callgrind watches: start the app, serve `requests` requests, stop it."""
    from bench.asgi import request
    from bench.memo import MEMO_BODY

    random.seed(0)  # the same trace ids, so the same requests sampled, in both counts
    app = importlib.import_module(module).app
    body = json.dumps(MEMO_BODY).encode()

    async def serve() -> None:
        async with app.router.lifespan_context(app):
            method, path, sent, wanted = "GET", route, None, 200
            if route == MEMO_POST:
                method, path, sent, wanted = "POST", "/memos/", body, 201
            elif route == MEMO_GET:
                status, created = await request(app, "/memos/", "POST", body)
                if status != 201:
                    raise SystemExit(f"POST /memos/ answered {status}")
                path = f"/memos/{json.loads(created)['id']}"
            for _ in range(requests):
                status, _ = await request(app, path, method, sent)
                if status != wanted:
                    raise SystemExit(f"{method} {path} answered {status}")

    asyncio.run(serve())
    telemetry = getattr(importlib.import_module(module), "telemetry", None)
    if telemetry is not None:
        telemetry.shutdown()  # the spans still queued are exported, in both counts alike


def ratios(counts: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], float]]:
    """Each count (as `Count`'s fields) with its base's instructions over its own."""
    per_request = {(c["variant"], c["route"]): c["per_request"] for c in counts}
    return [(c, per_request[c["base"], c["route"]] / c["per_request"]) for c in counts]


def table(counts: Sequence[Count]) -> str:
    lines = [
        "| variant | route | instructions per request | unsampled / sampled | base's over the "
        "variant's |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for c, ratio in ratios([asdict(count) for count in counts]):
        lines.append(
            f"| `{c['variant']}` | {c['route']} | {c['per_request']:,.0f} | {by_sampling(c)} "
            f"| {ratio:.3f} |"
        )
    return "\n".join(lines)


def by_sampling(count: Mapping[str, Any]) -> str:
    """A ratio sampler's two counts, none sampled and all sampled; empty for other variants."""
    if count.get("sampled") is None:
        return ""
    return f"{count['unsampled']:,.0f} / {count['sampled']:,.0f}"


def main() -> None:
    if sys.argv[1:2] == ["--drive"]:
        drive(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    from bench.sink import SinkHandler

    started = time.monotonic()
    sink = ThreadingHTTPServer(("127.0.0.1", 0), SinkHandler)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sink.server_address[1]}"
    counts = measure(endpoint, lambda message: print(message, file=sys.stderr), *_REQUESTS_FULL)
    sink.shutdown()
    print(table(counts))
    print(f"\n({time.monotonic() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
