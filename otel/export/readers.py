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
from otel.metrics.bridge import PrometheusBridge
from otel.metrics.producer import RequestMetricsProducer

# Its own scope: OTLP encoders merge scope metrics by scope, the last one winning.
SCOPE = InstrumentationScope("otel.fastapi.requests")
BRIDGE_SCOPE = InstrumentationScope("otel.prometheus_bridge")


class WithRequestMetrics(MetricExporter):
    """Wraps an exporter so that each export also carries the aggregator's request metrics
    and the bridged prometheus_client metrics."""

    def __init__(
        self,
        exporter: MetricExporter,
        aggregator: RequestAggregator,
        resource: Resource,
        bridge: PrometheusBridge | None = None,
    ) -> None:
        temporality = exporter._preferred_temporality or {}
        super().__init__(temporality, exporter._preferred_aggregation)
        self.exporter = exporter
        self._resource = resource
        self._producer = RequestMetricsProducer(
            aggregator, temporality.get(Counter, AggregationTemporality.CUMULATIVE)
        )
        self._bridge = bridge

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        ours = [ScopeMetrics(SCOPE, self._producer.produce(), schema_url="")]
        if self._bridge is not None:
            ours.append(ScopeMetrics(BRIDGE_SCOPE, self._bridge.metrics(), schema_url=""))
        resource_metrics = list(metrics_data.resource_metrics)
        if resource_metrics:
            first = resource_metrics[0]
            resource_metrics[0] = ResourceMetrics(
                first.resource, [*first.scope_metrics, *ours], first.schema_url
            )
        else:
            resource_metrics = [ResourceMetrics(self._resource, ours, "")]
        return self.exporter.export(MetricsData(resource_metrics), timeout_millis=timeout_millis)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.exporter.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.exporter.shutdown(timeout_millis=timeout_millis)


class ProducingReader(PeriodicExportingMetricReader):
    """Exports at every tick even when no SDK instrument has data: the request metrics and the
    bridged families are produced at export time (`WithRequestMetrics`), the part the spec
    gives a MetricProducer, which this SDK does not have yet."""

    # The SDK marks collect() final and skips the export when its own instruments have no data;
    # this is its body without that skip.
    def collect(self, timeout_millis: float = 10_000) -> None:  # type: ignore[misc]
        if self._collect is None:
            super().collect(timeout_millis)
            return
        metrics = self._collect(self, timeout_millis=timeout_millis)  # type: ignore[call-arg]
        data = metrics if isinstance(metrics, MetricsData) else MetricsData([])
        self._receive_metrics(data, timeout_millis=timeout_millis)


def build_readers(
    config: TelemetryConfig,
    registry: CollectorRegistry,
    aggregator: RequestAggregator,
    resource: Resource,
    bridge: PrometheusBridge | None = None,
) -> list[MetricReader]:
    readers: list[MetricReader] = []
    for name in config.metrics_exporters:
        if name == "prometheus":
            readers.append(PrometheusReader(registry))
            continue
        exporter = WithRequestMetrics(
            _push_exporter(name, config.env), aggregator, resource, bridge
        )
        readers.append(ProducingReader(exporter, export_interval_millis=config.export_interval_ms))
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
        from otel.export.otlp_bridged import OtlpGrpcExporter

        return OtlpGrpcExporter(timeout=timeout)
    from otel.export.otlp_bridged import OtlpHttpExporter

    return OtlpHttpExporter(timeout=timeout)
