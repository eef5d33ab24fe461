"""Prometheus remote write with the same series names as the other export paths.

Transport (snappy-compressed protobuf over HTTP) comes from
`opentelemetry-exporter-prometheus-remote-write`; its translation does not: it appends the raw
unit (`_s`), no `_total`, sends histogram buckets uncumulated and every resource attribute as a
label. This one names series as the collector does (`otel/metrics/naming.py`), sets `job` and
`instance` from `service.name` and `service.instance.id`, and carries exemplars.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from opentelemetry.exporter.prometheus_remote_write import PrometheusRemoteWriteMetricsExporter
from opentelemetry.exporter.prometheus_remote_write.gen.types_pb2 import (  # type: ignore[attr-defined]
    Exemplar,
    Label,
    Sample,
    TimeSeries,
)
from opentelemetry.sdk.metrics.export import Gauge, Histogram, Metric, MetricsData, Sum

from otel.config import TelemetryConfigError
from otel.export.prometheus_reader import metric_type
from otel.export.render import floatToGoString
from otel.metrics.naming import (
    MetricType,
    NamingError,
    job_and_instance,
    metric_name,
    prometheus_labels,
)
from otel.metrics.summary import Summary

log = logging.getLogger(__name__)

ENDPOINT_VARIABLE = "OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT"

Labels = tuple[tuple[str, str], ...]


class RemoteWriteExporter(PrometheusRemoteWriteMetricsExporter):
    def _translate_data(self, data: MetricsData) -> list[TimeSeries]:
        series: list[TimeSeries] = []
        for resource_metrics in data.resource_metrics:
            job, instance = job_and_instance(resource_metrics.resource.attributes)
            target = (("instance", instance), ("job", job))
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    try:
                        series.extend(_timeseries(metric, target))
                    except NamingError as error:
                        log.warning("metric %r not written: %s", metric.name, error)
        return series


def remote_write_exporter(env: Mapping[str, str]) -> RemoteWriteExporter:
    endpoint = env.get(ENDPOINT_VARIABLE, "").strip()
    if not endpoint:
        raise TelemetryConfigError(
            f"OTEL_METRICS_EXPORTER=prometheus_remote_write needs {ENDPOINT_VARIABLE}, "
            "e.g. http://prometheus:9090/api/v1/write"
        )
    timeout = int(env.get("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_TIMEOUT", "10"))
    return RemoteWriteExporter(endpoint=endpoint, timeout=timeout, resources_as_labels=False)


def _timeseries(metric: Metric, target: Labels) -> Iterator[TimeSeries]:
    data = metric.data
    kind = metric_type(metric)
    if kind is MetricType.EXPONENTIAL_HISTOGRAM:
        log.warning("metric %r not written: exponential histograms are not supported", metric.name)
        return
    name = metric_name(metric.name, metric.unit or "", kind)
    if isinstance(data, Histogram):
        for histogram_point in data.data_points:
            labels = _labels(histogram_point.attributes, target)
            yield from _histogram(name, labels, histogram_point)
    elif isinstance(data, Summary):
        for summary_point in data.data_points:
            labels = _labels(summary_point.attributes, target)
            yield from _summary(name, labels, summary_point)
    elif isinstance(data, Sum | Gauge):
        for point in data.data_points:
            labels = _labels(point.attributes, target)
            yield _series(name, labels, point.value, point.time_unix_nano)


def _histogram(name: str, labels: Labels, point: Any) -> Iterator[TimeSeries]:
    bounds = [floatToGoString(b) for b in point.explicit_bounds] + ["+Inf"]
    exemplars = _exemplars_by_bucket(point)
    cumulative = 0
    for index, (le, count) in enumerate(zip(bounds, point.bucket_counts, strict=True)):
        cumulative += count
        bucket = _series(f"{name}_bucket", (*labels, ("le", le)), cumulative, point.time_unix_nano)
        bucket.exemplars.extend(exemplars.get(index, ()))
        yield bucket
    yield _series(f"{name}_count", labels, point.count, point.time_unix_nano)
    yield _series(f"{name}_sum", labels, point.sum, point.time_unix_nano)


def _summary(name: str, labels: Labels, point: Any) -> Iterator[TimeSeries]:
    for quantile, value in point.quantile_values:
        quantile_label = ("quantile", floatToGoString(quantile))
        yield _series(name, (*labels, quantile_label), value, point.time_unix_nano)
    yield _series(f"{name}_count", labels, point.count, point.time_unix_nano)
    yield _series(f"{name}_sum", labels, point.sum, point.time_unix_nano)


def _exemplars_by_bucket(point: Any) -> dict[int, list[Exemplar]]:
    found: dict[int, list[Exemplar]] = {}
    for exemplar in point.exemplars or ():
        if exemplar.trace_id is None:
            continue
        message = Exemplar(
            labels=[
                Label(name="trace_id", value=f"{exemplar.trace_id:032x}"),
                Label(name="span_id", value=f"{exemplar.span_id:016x}"),
            ],
            value=exemplar.value,
            timestamp=exemplar.time_unix_nano // 1_000_000,
        )
        found.setdefault(bisect_left(point.explicit_bounds, exemplar.value), []).append(message)
    return found


def _labels(attributes: Mapping[str, Any] | None, target: Labels) -> Labels:
    own = prometheus_labels((attributes or {}).items())
    return tuple(own.items()) + target


def _series(name: str, labels: Iterable[tuple[str, str]], value: float, time_ns: int) -> TimeSeries:
    series = TimeSeries()
    for key, text in sorted((("__name__", name), *labels)):
        series.labels.append(Label(name=key, value=text))
    series.samples.append(Sample(value=float(value), timestamp=time_ns // 1_000_000))
    return series
