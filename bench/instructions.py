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
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import ThreadingHTTPServer

from bench.procs import BenchError, clean_env
from bench.variants import BY_NAME, TRACES

VARIANTS = ("bare", "ours", "ours-traces", "ours-traces-10")
ROUTES = ("/ping", "/items/42")
REQUESTS = (500, 2500)  # the two counts whose difference is measured
_COLLECTED = re.compile(r"Collected : (\d+)")


@dataclass(frozen=True)
class Count:
    variant: str
    route: str
    per_request: float  # instructions


def measure(
    sink_endpoint: str, progress: Callable[[str], None], requests: Sequence[int] = REQUESTS
) -> list[Count]:
    """Every variant on every route; two callgrind runs at a time (one per core)."""
    if subprocess.run(["valgrind", "--version"], capture_output=True).returncode != 0:
        raise BenchError("missing valgrind: install the Debian package valgrind")
    jobs = [(variant, route) for variant in VARIANTS for route in ROUTES]
    progress(f"instructions: {len(jobs)} counts under callgrind")
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = pool.map(lambda job: _count(*job, sink_endpoint, requests), jobs)
        return list(counts)


def _count(variant: str, route: str, sink_endpoint: str, requests: Sequence[int]) -> Count:
    low, high = (_instructions(variant, route, n, sink_endpoint) for n in requests)
    return Count(variant, route, (high - low) / (requests[1] - requests[0]))


def _instructions(variant: str, route: str, requests: int, sink_endpoint: str) -> int:
    env = clean_env(BY_NAME[variant].environment(sink_endpoint))
    env["PYTHONHASHSEED"] = "0"
    if TRACES in BY_NAME[variant].pushes:
        env["OTEL_BSP_SCHEDULE_DELAY"] = str(24 * 3600 * 1000)  # full batches only (see above)
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "bench.instructions",
        "--drive",
        BY_NAME[variant].module,
        route,
        str(requests),
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise BenchError(f"callgrind on {variant} {route} failed: {done.stderr[-2000:]}")
    return int(found.group(1))


def drive(module: str, route: str, requests: int) -> None:
    """In the process callgrind watches: start the app, serve `requests` GETs, stop it."""
    from bench.asgi import request

    random.seed(0)  # the same trace ids, so the same requests sampled, in both counts
    app = importlib.import_module(module).app

    async def serve() -> None:
        async with app.router.lifespan_context(app):
            for _ in range(requests):
                status, _ = await request(app, route)
                if status != 200:
                    raise SystemExit(f"{route} answered {status}")

    asyncio.run(serve())
    telemetry = getattr(importlib.import_module(module), "telemetry", None)
    if telemetry is not None:
        telemetry.shutdown()  # the spans still queued are exported, in both counts alike


def table(counts: Sequence[Count]) -> str:
    base = {c.route: c.per_request for c in counts if c.variant == "bare"}
    lines = [
        "| variant | route | instructions per request | vs bare |",
        "| --- | --- | ---: | ---: |",
    ]
    for c in counts:
        lines.append(
            f"| `{c.variant}` | {c.route} | {c.per_request:,.0f} | "
            f"{base[c.route] / c.per_request:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--drive"]:
        drive(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    from bench.sink import SinkHandler

    started = time.monotonic()
    sink = ThreadingHTTPServer(("127.0.0.1", 0), SinkHandler)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sink.server_address[1]}"
    counts = measure(endpoint, lambda message: print(message, file=sys.stderr))
    sink.shutdown()
    print(table(counts))
    print(f"\n({time.monotonic() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
