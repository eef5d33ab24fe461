"""Several uvicorn workers: exact totals on the direct path and on the OTLP push path."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx

from tests.helpers import Scrape
from tests.otlp_receiver import Received, attributes, http_receiver
from tests.servers import Processes, start_service, wait_for

WORKERS = 4
REQUESTS = 200
MEMOS = 5
ROUTE = {"method": "GET", "endpoint": "/memos/{memo_id}", "status_code": "200"}


def fresh_connection(url: str) -> httpx.Client:
    """A client that opens a new connection per request, so requests spread over workers."""
    return httpx.Client(base_url=url, limits=httpx.Limits(max_keepalive_connections=0))


def drive(url: str) -> None:
    with fresh_connection(url) as client:
        for i in range(MEMOS):
            assert client.post("/memos/", json={"title": f"{i}", "content": "c"}).status_code == 201
        for i in range(REQUESTS):
            assert client.get(f"/memos/{i % MEMOS + 1}").status_code == 200


def scrapes(url: str, count: int) -> list[Scrape]:
    with fresh_connection(url) as client:
        return [Scrape(client.get("/metrics").text) for _ in range(count)]


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children if _is_worker(int(pid))]


def _is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_every_scrape_counts_every_workers_requests(processes: Processes, tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'memos.db'}"}
    url = start_service(processes, "service", env, workers=WORKERS)
    master = processes.running["service"].pid
    wait_for(lambda: len(worker_pids(master)) == WORKERS, 30, f"{WORKERS} workers")
    drive(url)

    for scrape in scrapes(url, 12):
        assert scrape.value("fastapi_requests_total", **ROUTE) == REQUESTS
        labels = {"method": "GET", "endpoint": "/memos/{memo_id}"}
        assert scrape.value("fastapi_request_duration_seconds_count", **labels) == REQUESTS
        assert scrape.value("memo_total") == MEMOS  # the table's count, not one per worker
        assert scrape.value("process_start_time_seconds") is not None

    # A worker that stops hands its counts over; uvicorn starts a replacement.
    stopped = worker_pids(master)[0]
    os.kill(stopped, signal.SIGTERM)
    wait_for(
        lambda: stopped not in worker_pids(master) and len(worker_pids(master)) == WORKERS,
        30,
        "a replacement worker",
    )
    for scrape in scrapes(url, 8):
        assert scrape.value("fastapi_requests_total", **ROUTE) == REQUESTS


class ContinuousScrapes:
    """Scrapes `/metrics` back to back on fresh connections until stopped."""

    def __init__(self, url: str) -> None:
        self.totals: list[float | None] = []
        self.resets = 0
        self._url = url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        with fresh_connection(self._url) as client:
            while not self._stop.is_set():
                try:
                    response = client.get("/metrics", timeout=30)
                except httpx.TransportError:
                    # uvicorn resets a connection the stopping worker accepted but will not
                    # serve; the scraper tries again, as Prometheus would on its next scrape.
                    self.resets += 1
                    continue
                scrape = Scrape(response.text)
                self.totals.append(scrape.value("fastapi_requests_total", **ROUTE))

    def stop(self) -> list[float | None]:
        self._stop.set()
        self._thread.join()
        return self.totals


def test_totals_never_drop_while_every_worker_is_replaced(
    processes: Processes, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'memos.db'}"}
    url = start_service(processes, "service", env, workers=WORKERS)
    master = processes.running["service"].pid
    wait_for(lambda: len(worker_pids(master)) == WORKERS, 30, f"{WORKERS} workers")
    drive(url)
    scrapes = ContinuousScrapes(url)
    try:
        during: list[int] = []
        for stopped in worker_pids(master):
            before = len(scrapes.totals)
            os.kill(stopped, signal.SIGTERM)
            wait_for(
                lambda s=stopped: (
                    s not in worker_pids(master) and len(worker_pids(master)) == WORKERS
                ),
                60,
                "a replacement worker",
            )
            wait_for(lambda b=before: len(scrapes.totals) > b + 2, 60, "scrapes after it")
            during.append(len(scrapes.totals) - before)
    finally:
        totals = scrapes.stop()
    assert all(n > 2 for n in during)
    assert totals == [REQUESTS] * len(totals)  # never lower, never counted twice


def test_each_worker_pushes_as_its_own_instance(processes: Processes, tmp_path: Path) -> None:
    with http_receiver() as (endpoint, received):
        env = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'memos.db'}",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
        }
        url = start_service(processes, "service", env, workers=WORKERS)
        master = processes.running["service"].pid
        wait_for(lambda: len(worker_pids(master)) == WORKERS, 30, f"{WORKERS} workers")
        drive(url)
        received.wait_for(lambda r: summed_requests(r) == REQUESTS, timeout=20)
        instances = {r["service.instance.id"] for r in received.resources()}
        assert len(instances) == WORKERS
        assert {r["service.name"] for r in received.resources()} == {"fastapi"}


def summed_requests(received: Received) -> int:
    """The dashboards' sum() over instances of the newest cumulative count of each."""
    total = 0
    for (_, name), metric in received.latest_metrics().items():
        if name != "fastapi_requests":
            continue
        for point in metric.sum.data_points:
            labels = attributes(point.attributes)
            if all(labels.get(k) == v for k, v in ROUTE.items()):
                total += point.as_int
    return total
