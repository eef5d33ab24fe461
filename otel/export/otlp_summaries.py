"""The SDK's OTLP metric exporters, able to send the Summary points of bridged summaries.

The SDK has no summary point: its encoder (`encode_metrics`, public) skips unknown data with a
warning. These exporters encode every summary as an empty gauge placeholder first, so the encoder
puts the metric under its resource and scope, then fill the placeholder's summary points. The one
non-public name used is each exporter's own send step: `_export_batch(request)` for
http/protobuf, and `_translate_data(data)` for gRPC (its documented-by-design template step).
"""

from __future__ import annotations

from dataclasses import replace
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
from opentelemetry.sdk.metrics.export import Gauge, MetricExportResult, MetricsData

from otel.metrics.summary import Summary, SummaryDataPoint

# (scope name, metric name) -> the summary to put there
_Summaries = dict[tuple[str, str], Summary]


def encode_with_summaries(data: MetricsData) -> ExportMetricsServiceRequest:
    summaries: _Summaries = {}
    placeholders = _with_placeholders(data, summaries)
    request = encode_metrics(placeholders)
    if summaries:
        _fill(request, summaries)
    return request


class HttpSummaryExporter(HttpExporter):
    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        if self._shutdown or self._max_export_batch_size is not None:
            return super().export(metrics_data, timeout_millis, **kwargs)
        return self._export_batch(encode_with_summaries(metrics_data))


class GrpcSummaryExporter(GrpcExporter):
    def _translate_data(self, data: MetricsData) -> ExportMetricsServiceRequest:
        return encode_with_summaries(data)


def _with_placeholders(data: MetricsData, summaries: _Summaries) -> MetricsData:
    resource_metrics = []
    for resource in data.resource_metrics:
        scopes = []
        for scope in resource.scope_metrics:
            metrics = []
            for metric in scope.metrics:
                if isinstance(metric.data, Summary):
                    summaries[(scope.scope.name, metric.name)] = metric.data
                    metric = replace(metric, data=Gauge([]))
                metrics.append(metric)
            scopes.append(replace(scope, metrics=metrics))
        resource_metrics.append(replace(resource, scope_metrics=scopes))
    return MetricsData(resource_metrics)


def _fill(request: ExportMetricsServiceRequest, summaries: _Summaries) -> None:
    for resource in request.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                summary = summaries.get((scope.scope.name, metric.name))
                if summary is not None:
                    metric.ClearField("gauge")
                    metric.summary.data_points.extend(_point(p) for p in summary.data_points)


def _point(point: SummaryDataPoint) -> pb2.SummaryDataPoint:
    return pb2.SummaryDataPoint(
        attributes=[
            KeyValue(key=k, value=AnyValue(string_value=str(v)))
            for k, v in point.attributes.items()
        ],
        start_time_unix_nano=point.start_time_unix_nano,
        time_unix_nano=point.time_unix_nano,
        count=point.count,
        sum=point.sum,
        quantile_values=[
            pb2.SummaryDataPoint.ValueAtQuantile(quantile=q, value=v)
            for q, v in point.quantile_values
        ],
    )
