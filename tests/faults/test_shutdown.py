"""SIGTERM under load: requests in flight finish, and the final push export carries them all.

The service exports over OTLP once a minute, so within the test only the export made at shutdown
can reach the receiver. A request is kept in flight for real: PostgreSQL sits behind a FaultProxy
whose black hole holds the request's first query until the service has stopped taking requests.
The database flows again before the final export, whose memo_total is a query with its own 2 s
bound: a database kept slow through the shutdown would make that bound the machine's speed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.faults.proxy import FaultProxy
from tests.faults.support import scaled, through
from tests.otlp_receiver import Received, attributes, http_receiver
from tests.servers import Processes, start_service, wait_for

pytestmark = pytest.mark.postgres

LOADERS = 3
# The held query must not time out: DB_TIMEOUT_SECONDS well above how long the test holds it.
DB_TIMEOUT = 30


class Load(threading.Thread):
    """Requests a cheap route back to back until the service stops answering."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.answered: Counter[int] = Counter()
        self.refused = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while self.refused < 3:
                try:
                    self.answered[client.get("/openapi.json").status_code] += 1
                except httpx.TransportError:  # refused, or closed before the request was read
                    self.refused += 1
                    time.sleep(0.05)


def final_counts(received: Received) -> dict[tuple[str, str, str], int]:
    [request] = received.metrics  # the one export: the one made at shutdown
    counts: dict[tuple[str, str, str], int] = {}
    for resource_metrics in request.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "fastapi_requests":
                    for point in metric.sum.data_points:
                        labels = attributes(point.attributes)
                        key = (labels["method"], labels["endpoint"], labels["status_code"])
                        counts[key] = int(point.as_int)
    return counts


def memo_total(received: Received) -> int | None:
    [request] = received.metrics
    for resource_metrics in request.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "memo_total":
                    return int(metric.gauge.data_points[0].as_int)
    return None


def test_sigterm_under_load_finishes_in_flight_requests_and_flushes_telemetry(
    postgres_url: str, processes: Processes, proxy_to: Callable[[int], FaultProxy]
) -> None:
    proxy = proxy_to(5432)
    with http_receiver() as (endpoint, received):
        env = {
            "DATABASE_URL": through(proxy, postgres_url, "127.0.0.1:5432"),
            "DB_TIMEOUT_SECONDS": str(DB_TIMEOUT),
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        }
        url = start_service(processes, "shutdown", env)
        service = processes.running["shutdown"]
        with httpx.Client(base_url=url, timeout=30) as client:
            for n in range(2):
                assert client.post("/memos/", json={"title": f"{n}", "content": "c"}).is_success
        assert received.metrics == []

        loads = [Load(url) for _ in range(LOADERS)]
        for load in loads:
            load.start()
        wait_for(lambda: all(load.answered for load in loads), scaled(10), "load answered")
        proxy.blackhole()  # the load's route does not use the database
        slow: list[httpx.Response | BaseException] = []

        def slow_request() -> None:
            try:
                slow.append(httpx.get(f"{url}/memos/", timeout=DB_TIMEOUT))
            except BaseException as error:
                slow.append(error)

        in_flight = threading.Thread(target=slow_request)
        in_flight.start()
        proxy.wait_until(lambda p: p.held > 0, scaled(10), "the slow request's query held")
        os.kill(service.pid, signal.SIGTERM)
        # The service stops listening: each load thread is refused, and ends.
        for load in loads:
            load.join(timeout=scaled(30))
            assert not load.is_alive(), "the service still answers after SIGTERM"
        assert slow == [] and proxy.held > 0  # the request is still in flight, held
        proxy.restore()
        restored = time.monotonic()
        in_flight.join(timeout=DB_TIMEOUT)
        service.wait(timeout=scaled(30))
        answered_in_all = sum(sum(load.answered.values()) for load in loads)
        print(
            f"in-flight request answered {time.monotonic() - restored:.2f}s after the database"
            f" returned; {answered_in_all} load requests answered"
        )

        [answer] = slow
        assert isinstance(answer, httpx.Response), answer
        assert answer.status_code == 200
        assert [memo["title"] for memo in answer.json()] == ["1", "0"]
        assert service.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal

        answered: Counter[int] = sum((load.answered for load in loads), Counter())
        assert set(answered) == {200}, answered  # load answered in full until the end: no 5xx

        received.wait_for(lambda r: len(r.metrics) == 1, timeout=scaled(5))
        counts = final_counts(received)
        assert counts[("GET", "/memos/", "200")] == 1
        assert counts[("POST", "/memos/", "201")] == 2
        # /openapi.json's label is otel/'s business (a plain Starlette route); its count is ours.
        others = {"/memos/", "/health"}  # the slow request; start_service's readiness polls
        load_counted = sum(
            n
            for (method, endpoint, status), n in counts.items()
            if (method, status) == ("GET", "200") and endpoint not in others
        )
        assert load_counted == answered[200]
        assert memo_total(received) == 2
