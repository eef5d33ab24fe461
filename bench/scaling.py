"""How the metrics grow with app replicas: `python -m bench.scaling [--replicas 1,2,4]`.

For each replica count it runs that many real app replicas (uvicorn, two workers each, one SQLite
database) on 127.0.0.2, 127.0.0.3, ..., a steady request mix on every replica, Debian's Prometheus
scraping each replica every 5s (the project's interval) and remote-writing everything to Debian's
VictoriaMetrics. Then it reads:

- series per replica: the samples of one scrape of a replica (scrape_samples_scraped);
- samples per second per replica: that over the scrape interval;
- each store's ingestion rate: Prometheus's appended samples, VictoriaMetrics's inserted rows;
- the latency of the dashboard's heaviest panel (Request Duration p95, a range query over the
  run at Grafana's 15s step), median of 20, on each store (VictoriaMetrics's result cache off).

Prints a Markdown table. Figures depend on the machine and its load; compare rows of one run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.procs import BenchError, Processes, clean_env, free_port, python_module

SCRAPE_INTERVAL = 5
APPENDED = "prometheus_tsdb_head_samples_appended_total"
HEAVIEST_PANEL = (
    "histogram_quantile(0.95, sum by (le) (rate(fastapi_request_duration_seconds_bucket[1m])))"
)
PATHS = ["/memos/", "/memos/1", "/memos/999999", "/health", "/memos/search/?q=a", "/nope"]


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BenchError(f"{name} is not installed (Debian packages prometheus, victoria-metrics)")
    return path


def query(base: str, path: str, **params: str | float) -> list[dict[str, Any]]:
    body = httpx.get(f"{base}/api/v1/{path}", params=params, timeout=30).json()
    if body.get("status") != "success":
        raise BenchError(f"{base} {path} {params}: {body}")
    return list(body["data"]["result"])


def scalar(base: str, promql: str) -> float:
    result = query(base, "query", query=promql)
    return float(result[0]["value"][1]) if result else float("nan")


def load(urls: list[str], stop: threading.Event) -> None:
    """About 20 requests a second per replica, every path in turn."""
    with httpx.Client(timeout=10) as client:
        client.post(f"{urls[0]}/memos/", json={"title": "a", "content": "b"})
        n = 0
        while not stop.is_set():
            for url in urls:
                client.get(url + PATHS[n % len(PATHS)])
            n += 1
            stop.wait(0.05)


def own_counter(base: str, name: str) -> float:
    """A store's own counter, read from its /metrics (neither store scrapes itself here)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name} ", f"{name}{{"))
    )


def serve(procs: Processes, name: str, argv: list[str], ready: str, **env: str) -> None:
    """Start a process and wait until `ready` answers 200."""
    proc = procs.start(name, argv, clean_env(env))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited: {procs.log_tail(name)}")
        try:
            if httpx.get(ready, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise BenchError(f"{name} not ready at {ready}")


def measure(replicas: int, seconds: int, workdir: Path) -> dict[str, float]:
    port = free_port()
    addresses = [f"127.0.0.{2 + n}" for n in range(replicas)]
    database = f"sqlite+aiosqlite:///{workdir / 'memos.db'}"
    with ExitStack() as stack:
        procs = stack.enter_context(Processes(workdir))
        for address in addresses:
            argv = python_module("uvicorn", "service.main:app", "--host", address)
            argv += ["--port", str(port), "--workers", "2", "--no-access-log"]
            serve(procs, address, argv, f"http://{address}:{port}/health", DATABASE_URL=database)
        victoria = f"http://127.0.0.1:{free_port()}"
        serve(
            procs,
            "victoria-metrics",
            [
                binary("victoria-metrics"),
                f"-storageDataPath={workdir / 'vm'}",
                f"-httpListenAddr={victoria[7:]}",
                "-search.disableCache",
                "-search.latencyOffset=1s",
            ],
            f"{victoria}/health",
        )
        prometheus = f"http://127.0.0.1:{free_port()}"
        config = {
            "global": {"scrape_interval": f"{SCRAPE_INTERVAL}s"},
            "scrape_configs": [
                {
                    "job_name": "fastapi",
                    "static_configs": [{"targets": [f"{a}:{port}" for a in addresses]}],
                }
            ],
            "remote_write": [{"url": f"{victoria}/api/v1/write"}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        serve(
            procs,
            "prometheus",
            [
                binary("prometheus"),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address={prometheus[7:]}",
                "--log.level=warn",
            ],
            f"{prometheus}/-/ready",
        )
        stop = threading.Event()
        urls = [f"http://{a}:{port}" for a in addresses]
        thread = threading.Thread(target=load, args=(urls, stop), daemon=True)
        thread.start()
        stack.callback(thread.join, 15)
        stack.callback(stop.set)
        time.sleep(seconds / 2)
        counters = {victoria: "vm_rows_inserted_total", prometheus: APPENDED}
        before = {base: own_counter(base, name) for base, name in counters.items()}
        at_before = time.monotonic()
        time.sleep(seconds / 2)
        elapsed = time.monotonic() - at_before
        rates = {
            base: (own_counter(base, name) - before[base]) / elapsed
            for base, name in counters.items()
        }
        series = scalar(prometheus, 'avg(scrape_samples_scraped{job="fastapi"})')
        now = time.time()
        latencies = {}
        for name, base in (("prometheus", prometheus), ("victoria-metrics", victoria)):
            timings = []
            for _ in range(20):
                start = time.perf_counter()
                query(
                    base, "query_range", query=HEAVIEST_PANEL, start=now - seconds, end=now, step=15
                )
                timings.append(time.perf_counter() - start)
            latencies[name] = statistics.median(timings) * 1000
        return {
            "replicas": replicas,
            "series_per_replica": series,
            "samples_per_second_per_replica": series / SCRAPE_INTERVAL,
            # Both include the `up` and scrape_* series Prometheus writes for every target.
            "prometheus_samples_per_second": rates[prometheus],
            "victoria_rows_per_second": rates[victoria],
            "panel_ms_prometheus": latencies["prometheus"],
            "panel_ms_victoria": latencies["victoria-metrics"],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", default="1,2,4")
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args(argv)
    rows = []
    for count in [int(n) for n in args.replicas.split(",")]:
        with tempfile.TemporaryDirectory(prefix="bench-scaling-") as workdir:
            rows.append(measure(count, args.seconds, Path(workdir)))
    print(
        "| replicas | series per replica | samples/s per replica | Prometheus samples/s "
        "| VictoriaMetrics rows/s | p95 panel, Prometheus (ms) | p95 panel, VictoriaMetrics (ms) |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['replicas']:.0f} | {row['series_per_replica']:.0f} "
            f"| {row['samples_per_second_per_replica']:.0f} "
            f"| {row['prometheus_samples_per_second']:.0f} | {row['victoria_rows_per_second']:.0f} "
            f"| {row['panel_ms_prometheus']:.1f} | {row['panel_ms_victoria']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
