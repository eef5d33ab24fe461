"""The in-process `/metrics` reader: SDK metrics as prometheus_client families, named by our rule.

opentelemetry-exporter-prometheus names series its own way: it turns a label key's leading digit
into `_` (so `2fa` and `3fa` become one label), appends the unit when the name does not end with it
even if it is already a token, and gives gauges of unit `1` no `_ratio`. This reader names every
metric and label with `otel.metrics.naming`, as the collector and remote write do.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Metric,
    MetricReader,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric as MetricFamily

from otel.export.render import floatToGoString
from otel.metrics.naming import (
    MetricType,
    NamingError,
    metric_name,
    prometheus_labels,
    unit_name,
)
from otel.metrics.summary import Summary

log = logging.getLogger(__name__)

_CUMULATIVE: dict[type, AggregationTemporality] = {
    instrument: AggregationTemporality.CUMULATIVE
    for instrument in (
        Counter,
        UpDownCounter,
        Histogram,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
    )
}


class PrometheusReader(MetricReader):
    """Collects the SDK's metrics whenever the registry is collected (each scrape)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(preferred_temporality=_CUMULATIVE)
        self._latest: MetricsData | None = None
        self._lock = threading.Lock()  # two scrapes at once each get their own collection
        self._registry = registry
        self._collector = _Collector(self)
        registry.register(self._collector)

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        self._latest = metrics_data

    def families(self) -> list[MetricFamily]:
        with self._lock:
            self._latest = None
            self.collect()
            latest, self._latest = self._latest, None
        return list(translate(latest)) if latest is not None else []

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._registry.unregister(self._collector)


class _Collector:
    def __init__(self, reader: PrometheusReader) -> None:
        self._reader = reader

    def collect(self) -> list[MetricFamily]:
        return self._reader.families()


def translate(data: MetricsData) -> Iterator[MetricFamily]:
    """Families by Prometheus name; metrics of several scopes with one name share a family."""
    families: dict[tuple[str, str], MetricFamily] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                try:
                    _add_metric(families, metric)
                except NamingError as error:
                    log.warning("metric %r left out of /metrics: %s", metric.name, error)
    return iter(families.values())


def metric_type(metric: Metric) -> MetricType:
    data = metric.data
    if isinstance(data, Sum):
        monotonic = data.is_monotonic
        return MetricType.MONOTONIC_COUNTER if monotonic else MetricType.NON_MONOTONIC_COUNTER
    if isinstance(data, Gauge):
        return MetricType.GAUGE
    if isinstance(data, HistogramData):
        return MetricType.HISTOGRAM
    if isinstance(data, Summary):
        return MetricType.SUMMARY
    return MetricType.EXPONENTIAL_HISTOGRAM


_PROMETHEUS_TYPES = {
    MetricType.MONOTONIC_COUNTER: "counter",
    MetricType.NON_MONOTONIC_COUNTER: "gauge",
    MetricType.GAUGE: "gauge",
    MetricType.HISTOGRAM: "histogram",
}


def _add_metric(families: dict[tuple[str, str], MetricFamily], metric: Metric) -> None:
    kind = metric_type(metric)
    prometheus_type = _PROMETHEUS_TYPES.get(kind)
    if prometheus_type is None:
        log.warning("metric %r left out of /metrics: %s is not supported", metric.name, kind.value)
        return
    name = metric_name(metric.name, metric.unit or "", kind)
    family = families.get((name, prometheus_type))
    if family is None:
        family = _family(name, metric.description or "", prometheus_type, metric.unit or "")
        families[(name, prometheus_type)] = family
    for point in metric.data.data_points:
        labels = prometheus_labels((point.attributes or {}).items())
        if prometheus_type == "histogram":
            _add_histogram(family, name, labels, point)
        else:
            family.add_sample(name, labels, point.value)  # type: ignore[union-attr]


def _family(name: str, description: str, prometheus_type: str, unit: str) -> MetricFamily:
    family_name = name.removesuffix("_total") if prometheus_type == "counter" else name
    words = unit_name(unit)
    # OpenMetrics' # UNIT line only where the name ends with the unit (prometheus_client's rule).
    shown_unit = words if words and family_name.endswith("_" + words) else ""
    return MetricFamily(family_name, description, prometheus_type, shown_unit)


def _add_histogram(family: MetricFamily, name: str, labels: dict[str, str], point: Any) -> None:
    cumulative = 0
    bounds: Iterable[Any] = [*point.explicit_bounds, float("inf")]
    for bound, count in zip(bounds, point.bucket_counts, strict=True):
        cumulative += count
        family.add_sample(f"{name}_bucket", {**labels, "le": floatToGoString(bound)}, cumulative)
    family.add_sample(f"{name}_count", labels, point.count)
    family.add_sample(f"{name}_sum", labels, point.sum)
