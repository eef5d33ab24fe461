"""The SDK's OTLP metric exporters, completed for metrics bridged from prometheus_client: their
Summary points and their `prometheus.type` metadata, which the SDK's data model lacks.

The SDK's encoder (`encode_metrics`, public) skips data it does not know with a warning. These
exporters encode every summary as an empty gauge placeholder first, so the encoder puts the
metric under its resource and scope, then fill in the summary points and the metadata. The one
non-public name used is each exporter's own send step: `_export_batch(request)` for
http/protobuf, and `_translate_data(data)` for gRPC (its template step for subclasses).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpExporter,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb2
from opentelemetry.sdk.metrics.export import Gauge, Metric, MetricExportResult, MetricsData

from otel.metrics.prometheus_to_otlp import PrometheusMetric
from otel.metrics.summary import Summary, SummaryDataPoint

# (scope name, metric name): where a bridged metric sits in the request
_Where = tuple[str, str]


@dataclass
class _Bridged:
    summaries: dict[_Where, Summary] = field(default_factory=dict)
    types: dict[_Where, str] = field(default_factory=dict)


def encode_with_bridged(data: MetricsData) -> ExportMetricsServiceRequest:
    bridged = _Bridged()
    request = encode_metrics(_with_placeholders(data, bridged))
    if bridged.types:
        _fill(request, bridged)
    return request


class OtlpHttpExporter(HttpExporter):
    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        if self._shutdown or self._max_export_batch_size is not None:
            return super().export(metrics_data, timeout_millis, **kwargs)
        return self._export_batch(encode_with_bridged(metrics_data))


class OtlpGrpcExporter(GrpcExporter):
    def _translate_data(self, data: MetricsData) -> ExportMetricsServiceRequest:
        return encode_with_bridged(data)


def _with_placeholders(data: MetricsData, bridged: _Bridged) -> MetricsData:
    resource_metrics = []
    for resource in data.resource_metrics:
        scopes = []
        for scope in resource.scope_metrics:
            metrics = [_placeholder(scope.scope.name, m, bridged) for m in scope.metrics]
            scopes.append(replace(scope, metrics=metrics))
        resource_metrics.append(replace(resource, scope_metrics=scopes))
    return MetricsData(resource_metrics)


def _placeholder(scope: str, metric: Metric, bridged: _Bridged) -> Metric:
    if isinstance(metric, PrometheusMetric):
        bridged.types[(scope, metric.name)] = metric.prometheus_type
    if isinstance(metric.data, Summary):
        bridged.summaries[(scope, metric.name)] = metric.data
        return replace(metric, data=Gauge([]))
    return metric


def _fill(request: ExportMetricsServiceRequest, bridged: _Bridged) -> None:
    for resource in request.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                where = (scope.scope.name, metric.name)
                if where in bridged.types:
                    metric.metadata.append(_string("prometheus.type", bridged.types[where]))
                summary = bridged.summaries.get(where)
                if summary is not None:
                    metric.ClearField("gauge")
                    metric.summary.data_points.extend(_point(p) for p in summary.data_points)


def _string(key: str, value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _point(point: SummaryDataPoint) -> pb2.SummaryDataPoint:
    return pb2.SummaryDataPoint(
        attributes=[_string(k, v) for k, v in point.attributes.items()],
        start_time_unix_nano=point.start_time_unix_nano,
        time_unix_nano=point.time_unix_nano,
        count=point.count,
        sum=point.sum,
        quantile_values=[
            pb2.SummaryDataPoint.ValueAtQuantile(quantile=q, value=v)
            for q, v in point.quantile_values
        ],
    )
