"""Metric readers for each value of OTEL_METRICS_EXPORTER."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.metrics import Counter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ConsoleMetricExporter,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry

from otel.config import TelemetryConfig, otlp_protocol, otlp_timeout_seconds
from otel.export.prometheus_reader import PrometheusReader
from otel.metrics.aggregator import RequestAggregator
from otel.metrics.producer import RequestMetricsProducer

# Its own scope: OTLP encoders merge scope metrics by scope, the last one winning.
SCOPE = InstrumentationScope("otel.fastapi.requests")


class WithRequestMetrics(MetricExporter):
    """Wraps an exporter so that each export also carries the aggregator's request metrics."""

    def __init__(
        self, exporter: MetricExporter, aggregator: RequestAggregator, resource: Resource
    ) -> None:
        temporality = exporter._preferred_temporality or {}
        super().__init__(temporality, exporter._preferred_aggregation)
        self.exporter = exporter
        self._resource = resource
        self._producer = RequestMetricsProducer(
            aggregator, temporality.get(Counter, AggregationTemporality.CUMULATIVE)
        )

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        ours = ScopeMetrics(SCOPE, self._producer.produce(), schema_url="")
        resource_metrics = list(metrics_data.resource_metrics)
        if resource_metrics:
            first = resource_metrics[0]
            resource_metrics[0] = ResourceMetrics(
                first.resource, [*first.scope_metrics, ours], first.schema_url
            )
        else:
            resource_metrics = [ResourceMetrics(self._resource, [ours], "")]
        return self.exporter.export(MetricsData(resource_metrics), timeout_millis=timeout_millis)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.exporter.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.exporter.shutdown(timeout_millis=timeout_millis)


def build_readers(
    config: TelemetryConfig,
    registry: CollectorRegistry,
    aggregator: RequestAggregator,
    resource: Resource,
) -> list[MetricReader]:
    readers: list[MetricReader] = []
    for name in config.metrics_exporters:
        if name == "prometheus":
            readers.append(PrometheusReader(registry))
            continue
        exporter = WithRequestMetrics(_push_exporter(name, config.env), aggregator, resource)
        readers.append(
            PeriodicExportingMetricReader(
                exporter, export_interval_millis=config.export_interval_ms
            )
        )
    return readers


def _push_exporter(name: str, env: Mapping[str, str]) -> MetricExporter:
    if name == "otlp":
        return otlp_exporter(env)
    if name == "prometheus_remote_write":
        from otel.export.remote_write import remote_write_exporter

        return remote_write_exporter(env)
    return ConsoleMetricExporter()


def otlp_exporter(env: Mapping[str, str] | None = None) -> MetricExporter:
    """The SDK's OTLP exporter; it reads the other OTEL_EXPORTER_OTLP_* variables itself."""
    env = os.environ if env is None else env
    timeout = otlp_timeout_seconds(env, "METRICS")
    if otlp_protocol(env, "METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcExporter,
        )

        return GrpcExporter(timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpExporter,
    )

    return HttpExporter(timeout=timeout)
