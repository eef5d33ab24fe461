"""An in-test OTLP receiver (gRPC and HTTP) that decodes what it gets with opentelemetry-proto.

It stands in for the OpenTelemetry Collector, which cannot run here; it decodes the real wire
format, so what it sees is what a collector would receive.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from otel.metrics.naming import MetricType, label_name, metric_name


class Received:
    """Every request the receiver decoded, in order."""

    def __init__(self) -> None:
        self.metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self.traces: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.changed = threading.Condition()

    def add(self, kind: str, message: Any) -> None:
        with self.changed:
            getattr(self, kind).append(message)
            self.changed.notify_all()

    def wait_for(self, predicate: Any, timeout: float = 15.0) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self), timeout=timeout):
                names = sorted({name for _, name in self.latest_metrics()})
                raise AssertionError(
                    f"the receiver did not get what was expected in {timeout}s; "
                    f"{len(self.metrics)} exports, metrics {names}"
                )

    def latest_metrics(self) -> dict[tuple[str, str], Metric]:
        """The newest export's metrics by (service.instance.id, metric name)."""
        found: dict[tuple[str, str], Metric] = {}
        for request in self.metrics:
            for resource_metrics in request.resource_metrics:
                instance = attributes(resource_metrics.resource.attributes)["service.instance.id"]
                for scope in resource_metrics.scope_metrics:
                    for metric in scope.metrics:
                        found[(str(instance), metric.name)] = metric
        return found

    def resources(self) -> list[dict[str, Any]]:
        return [
            attributes(rm.resource.attributes) for r in self.metrics for rm in r.resource_metrics
        ]


_DATA_TYPES = {
    "gauge": MetricType.GAUGE,
    "histogram": MetricType.HISTOGRAM,
    "exponential_histogram": MetricType.EXPONENTIAL_HISTOGRAM,
    "summary": MetricType.SUMMARY,
}


def translator_type(metric: Metric) -> MetricType:
    """The type the collector gives a decoded metric (its TranslatorMetricFromOtelMetric)."""
    data = metric.WhichOneof("data")
    if data == "sum":
        monotonic = metric.sum.is_monotonic
        return MetricType.MONOTONIC_COUNTER if monotonic else MetricType.NON_MONOTONIC_COUNTER
    return _DATA_TYPES.get(str(data), MetricType.UNKNOWN)


def collector_series(metric: Metric) -> tuple[str, frozenset[str]]:
    """The Prometheus name and label keys the collector's exporters give a decoded metric."""
    name = metric_name(metric.name, metric.unit, translator_type(metric))
    points = getattr(metric, str(metric.WhichOneof("data"))).data_points
    keys = {label_name(pair.key) for point in points for pair in point.attributes}
    return name, frozenset(keys)


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair) for pair in pairs}


def _value(pair: KeyValue) -> Any:
    kind = pair.value.WhichOneof("value")
    return getattr(pair.value, kind) if kind else None


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Any, context: Any) -> Any:
        self.received.add("metrics", request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(self, request: Any, context: Any) -> Any:
        self.received.add("traces", request)
        return trace_service_pb2.ExportTraceServiceResponse()


@contextmanager
def grpc_receiver() -> Iterator[tuple[str, Received]]:
    received = Received()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsService(received), server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(received), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.stop(grace=None)


@contextmanager
def http_receiver() -> Iterator[tuple[str, Received]]:
    received = Received()
    messages = {
        "/v1/metrics": ("metrics", metrics_service_pb2.ExportMetricsServiceRequest),
        "/v1/traces": ("traces", trace_service_pb2.ExportTraceServiceRequest),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path not in messages or "protobuf" not in self.headers["Content-Type"]:
                self.send_error(404)
                return
            kind, message_type = messages[self.path]
            received.add(kind, message_type.FromString(body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
