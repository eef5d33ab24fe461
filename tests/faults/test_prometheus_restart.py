"""Prometheus killed with SIGKILL and started again on the same data directory: every sample it
had scraped before the kill is still there (the write-ahead log is replayed on start)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.servers import Processes, free_port, wait_for
from tests.stack.stack_support import require_binary

pytestmark = pytest.mark.e2e

SCRAPE_INTERVAL = "1s"
SAMPLES_BEFORE_KILL = 3
QUERIES = ("up", "prometheus_tsdb_head_samples_appended_total")


def start_prometheus(processes: Processes, config: Path, data: Path, port: int) -> str:
    processes.start(
        "prometheus",
        [
            require_binary("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        processes.check_alive()
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200

    wait_for(ready, 30, "Prometheus ready")
    return url


def samples(url: str, query: str, at: float) -> list[tuple[float, str]]:
    """Every raw sample of `query` in the minute before `at`, as (timestamp, value)."""
    response = httpx.get(f"{url}/api/v1/query", params={"query": f"{query}[1m]", "time": at})
    body: dict[str, Any] = response.json()
    assert body["status"] == "success", body
    return [(float(t), v) for series in body["data"]["result"] for t, v in series["values"]]


def test_samples_scraped_before_sigkill_survive_the_restart(
    tmp_path: Path, processes: Processes
) -> None:
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": SCRAPE_INTERVAL},
                "scrape_configs": [
                    {"job_name": "self", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                ],
            }
        )
    )
    data = tmp_path / "data"
    url = start_prometheus(processes, config, data, port)

    def enough_scrapes() -> float | None:
        now = time.time()
        return now if len(samples(url, "up", now)) >= SAMPLES_BEFORE_KILL else None

    wait_for(enough_scrapes, 30, f"{SAMPLES_BEFORE_KILL} scrapes")
    at = time.time()  # what the kill must not lose: everything up to a moment before it
    before = {query: samples(url, query, at) for query in QUERIES}
    process = processes.running.pop("prometheus")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL

    start_prometheus(processes, config, data, port)
    after = {query: samples(url, query, at) for query in QUERIES}
    for query in QUERIES:
        assert len(before[query]) >= SAMPLES_BEFORE_KILL
        assert after[query] == before[query], query
    print(f"{len(before['up'])} scrapes of each series before the kill, all there after it")
