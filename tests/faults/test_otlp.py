"""The OTLP endpoint down or black-holed: requests do not slow down, memory stays bounded, and
export resumes, with nothing counted during the outage lost, once the endpoint is back.

The service pushes to the in-test receiver (it decodes the real OTLP wire format) through a
FaultProxy, every 200 ms, over OTLP/HTTP (and gRPC too in `make soak`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from statistics import median

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from tests.faults.proxy import FaultProxy
from tests.faults.support import SOAK, rss_kib, scaled, timed
from tests.otlp_receiver import Received, attributes, grpc_receiver, http_receiver
from tests.servers import Processes, start_service

BASELINE_REQUESTS = 200
OUTAGE_SECONDS = 60.0 if SOAK else 2.0
# Latency is compared as medians on a shared 2-core machine: generous on purpose.
LATENCY_RATIO = 3.0
RSS_GROWTH_KIB = 16 * 1024
# The spec's OTEL_EXPORTER_OTLP_TIMEOUT is in milliseconds: one second.
EXPORT_TIMEOUT_MS = 1000
RECEIVERS = {"http/protobuf": http_receiver, "grpc": grpc_receiver}
# gRPC reconnects with a backoff of several seconds after a cut: `make soak` only.
PROTOCOLS = ["http/protobuf", "grpc"] if SOAK else ["http/protobuf"]


class Service:
    def __init__(self, client: httpx.Client, processes: Processes, name: str, proxy: FaultProxy):
        self.client = client
        self.processes = processes
        self.name = name
        self.process = processes.running[name]
        self.proxy = proxy
        self.sent = 0  # GET /memos/ requests answered 200

    def get_memos(self) -> float:
        response, seconds = timed(self.client, "GET", "/memos/")
        assert response.status_code == 200, response.text
        self.sent += 1
        return seconds


@pytest.fixture(scope="module", params=PROTOCOLS)
def receiver(request: pytest.FixtureRequest) -> Iterator[tuple[str, int, Received]]:
    """An in-test OTLP receiver: the protocol, its port, and what it decoded."""
    protocol: str = request.param
    with RECEIVERS[protocol]() as (endpoint, received):
        yield protocol, int(endpoint.rsplit(":", 1)[1]), received


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    processes: Processes,
    proxy_to: Callable[[int], FaultProxy],
    receiver: tuple[str, int, Received],
) -> Iterator[Service]:
    protocol, port, _ = receiver
    proxy = proxy_to(port)
    name = f"otlp-{protocol.replace('/', '-')}"
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('otlp') / 'memos.db'}",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{proxy.address}",
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
        "OTEL_EXPORTER_OTLP_TIMEOUT": str(EXPORT_TIMEOUT_MS),
    }
    url = start_service(processes, name, env)
    with httpx.Client(base_url=url, timeout=30) as client:
        yield Service(client, processes, name, proxy)


def memos_in(request: ExportMetricsServiceRequest) -> int | None:
    """GET /memos/ 200s counted in one export; None when it has no such point."""
    for resource_metrics in request.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                if metric.name != "fastapi_requests":
                    continue
                for point in metric.sum.data_points:
                    labels = attributes(point.attributes)
                    key = (labels["method"], labels["endpoint"], labels["status_code"])
                    if key == ("GET", "/memos/", "200"):
                        return int(point.as_int)
    return None


def memos_counted(received: Received) -> int:
    """GET /memos/ 200s in the newest export that has them."""
    for request in reversed(received.metrics):
        counted = memos_in(request)
        if counted is not None:
            return counted
    return 0


def test_otlp_endpoint_down_or_black_holed_costs_requests_nothing(
    service: Service, receiver: tuple[str, int, Received]
) -> None:
    _, _, received = receiver
    received.wait_for(lambda r: len(r.metrics) >= 2, timeout=scaled(15))
    baseline = median(service.get_memos() for _ in range(BASELINE_REQUESTS))
    start_rss = rss_kib(service.process.pid)
    peak_rss = start_rss

    for fault in ("cut", "blackhole"):
        getattr(service.proxy, fault)()
        sent_before = service.sent
        latencies: list[float] = []
        deadline = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < deadline:
            latencies.extend(service.get_memos() for _ in range(20))
            peak_rss = max(peak_rss, rss_kib(service.process.pid))
        # An export already on its way at the fault may still land; an export made during the
        # outage would count the outage's requests (the counts are cumulative).
        through = [memos_in(request) or 0 for request in list(received.metrics)]
        assert max(through) <= sent_before, "the outage let exports through"
        during = median(latencies)
        print(
            f"{fault}: median GET /memos/ {during * 1000:.2f} ms over {len(latencies)} requests"
            f" (endpoint up: {baseline * 1000:.2f} ms)"
        )
        assert during <= LATENCY_RATIO * baseline, (fault, during, baseline)

        service.proxy.restore()
        restored = time.monotonic()
        # Cumulative counts: the first export after the outage carries every request made in it.
        received.wait_for(lambda r: memos_counted(r) == service.sent, timeout=scaled(30))
        print(f"{fault}: export resumed {time.monotonic() - restored:.2f}s after the restore")

    growth = peak_rss - start_rss
    print(f"RSS {start_rss} KiB before the outages, peak {peak_rss} KiB (+{growth} KiB)")
    assert growth < RSS_GROWTH_KIB


def test_sigterm_with_the_endpoint_black_holed_exits_within_the_export_timeout(
    service: Service,
) -> None:
    """Runs last in this module: it stops the service.

    With OTEL_EXPORTER_OTLP_TIMEOUT=1000 (one second, as the spec reads it) the final export
    gives up after about a second. The SDK takes the value as 1000 seconds, so shutdown waits out
    the reader's own 30 s limit instead: longer than the 10 s an orchestrator allows before it
    kills the process.
    """
    service.proxy.blackhole()
    # The next export (every 200 ms) is sent, and held: it hangs until its timeout.
    service.proxy.wait_until(lambda p: p.held > 0, scaled(5), "an export held by the black hole")
    os.kill(service.process.pid, signal.SIGTERM)
    stopped = time.monotonic()
    try:
        service.process.wait(timeout=EXPORT_TIMEOUT_MS / 1000 * 2 + scaled(1.5))
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {time.monotonic() - stopped:.1f}s after SIGTERM")
    finally:
        service.processes.running.pop(service.name)
        if service.process.poll() is None:
            os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait()
        service.proxy.restore()
