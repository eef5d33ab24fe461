"""prometheus_client families as OpenTelemetry metrics, by one table.

The table follows the OpenTelemetry specification's "Prometheus and OpenMetrics Compatibility",
section "Prometheus Metric points to OTLP": counters become monotonic sums, gauges and unknown
gauges, info and stateset non-monotonic sums, histograms histograms, summaries summaries, and
gauge histograms are dropped. HELP becomes the description, UNIT the unit (`seconds` -> `s`),
TYPE the `prometheus.type` metadata, `_created` the start time. A metric keeps the name
prometheus_client writes for its samples (`_total` on counters, `_info` on info), so every
Prometheus-style exporter ends with that name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    Sum,
)
from prometheus_client.metrics_core import Metric as MetricFamily
from prometheus_client.samples import Sample

from otel.metrics.naming import UNIT_WORDS
from otel.metrics.summary import Summary, SummaryDataPoint

CUMULATIVE = AggregationTemporality.CUMULATIVE


@dataclass(frozen=True)
class OtlpType:
    data: Literal["sum", "gauge", "histogram", "summary"]
    monotonic: bool = False
    # What prometheus_client appends to the family name in its samples.
    name_suffix: str = ""


PROMETHEUS_TO_OTLP: Mapping[str, OtlpType | None] = {
    "counter": OtlpType("sum", monotonic=True, name_suffix="_total"),
    "gauge": OtlpType("gauge"),
    "unknown": OtlpType("gauge"),
    "info": OtlpType("sum", name_suffix="_info"),
    "stateset": OtlpType("sum"),
    "histogram": OtlpType("histogram"),
    "summary": OtlpType("summary"),
    "gaugehistogram": None,
}

_UNIT_ABBREVIATIONS = {word: unit for unit, word in UNIT_WORDS.items() if word} | {"ratio": "1"}

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Times:
    now_ns: int
    # For series without `_created`: when the bridge started, the earliest it could have seen.
    default_start_ns: int


@dataclass(frozen=True)
class PrometheusMetric(Metric):
    """A metric read from prometheus_client, with the type the spec keeps as the OTLP metric's
    `prometheus.type` metadata (the SDK's `Metric` has no metadata)."""

    prometheus_type: str = "unknown"


def otlp_metric(family: MetricFamily, times: Times) -> PrometheusMetric | None:
    """The OpenTelemetry metric for one collected family, or None for a type the spec drops."""
    otlp = PROMETHEUS_TO_OTLP.get(family.type)
    if otlp is None:
        return None
    data = _DATA[otlp.data](family, otlp, times)
    if data is None:
        return None
    return PrometheusMetric(
        name=family.name + otlp.name_suffix,
        description=family.documentation,
        unit=otlp_unit(family.unit),
        data=data,
        prometheus_type=family.type,
    )


def otlp_unit(unit: str) -> str:
    if "_per_" in unit:
        numerator, _, denominator = unit.partition("_per_")
        per = _UNIT_ABBREVIATIONS.get(denominator) or _UNIT_ABBREVIATIONS.get(denominator + "s")
        return f"{otlp_unit(numerator)}/{per or denominator}"
    return _UNIT_ABBREVIATIONS.get(unit, unit)


def _numbers(family: MetricFamily, otlp: OtlpType, times: Times) -> Sum | Gauge:
    created = _created(family)
    name = family.name + otlp.name_suffix
    points = [
        NumberDataPoint(
            attributes=dict(sample.labels),
            start_time_unix_nano=created.get(_key(sample.labels), times.default_start_ns),
            time_unix_nano=times.now_ns,
            value=sample.value,
            exemplars=_exemplars(sample),
        )
        for sample in family.samples
        if sample.name == name
    ]
    if otlp.data == "gauge":
        return Gauge(points)
    return Sum(points, CUMULATIVE, is_monotonic=otlp.monotonic)


def _histogram(family: MetricFamily, otlp: OtlpType, times: Times) -> Histogram:
    created = _created(family)
    points = []
    for key, series in _series(family, "le").items():
        if "_count" not in series.totals:
            continue  # the spec drops a histogram without its count
        buckets = sorted(series.parts, key=lambda part: float(part[0]))
        cumulative = [int(sample.value) for _, sample in buckets]
        points.append(
            HistogramDataPoint(
                attributes=dict(key),
                start_time_unix_nano=created.get(key, times.default_start_ns),
                time_unix_nano=times.now_ns,
                count=int(series.totals["_count"]),
                sum=series.totals.get("_sum", 0.0),
                bucket_counts=[b - a for a, b in zip([0, *cumulative], cumulative, strict=False)],
                explicit_bounds=[float(le) for le, _ in buckets if le != "+Inf"],
                min=None,  # type: ignore[arg-type]  # unknown: optional in OTLP
                max=None,  # type: ignore[arg-type]
                exemplars=[e for _, s in buckets for e in _exemplars(s)],
            )
        )
    return Histogram(points, CUMULATIVE)


def _summary(family: MetricFamily, otlp: OtlpType, times: Times) -> Summary:
    created = _created(family)
    points = [
        SummaryDataPoint(
            attributes=dict(key),
            start_time_unix_nano=created.get(key, times.default_start_ns),
            time_unix_nano=times.now_ns,
            count=int(series.totals["_count"]),
            sum=series.totals.get("_sum", 0.0),
            quantile_values=tuple(sorted((float(q), s.value) for q, s in series.parts)),
        )
        for key, series in _series(family, "quantile").items()
        if "_count" in series.totals  # the spec drops a summary without its count
    ]
    return Summary(points)


_DATA: Mapping[str, Callable[[MetricFamily, OtlpType, Times], Any]] = {
    "sum": _numbers,
    "gauge": _numbers,
    "histogram": _histogram,
    "summary": _summary,
}


@dataclass
class _Series:
    """The samples of one label set of a histogram or summary."""

    parts: list[tuple[str, Sample]]  # by their `le` or `quantile`
    totals: dict[str, float]  # by suffix: _count, _sum


def _series(family: MetricFamily, part_label: str) -> dict[Labels, _Series]:
    found: dict[Labels, _Series] = {}
    for sample in family.samples:
        suffix = sample.name[len(family.name) :]
        labels = {k: v for k, v in sample.labels.items() if k != part_label}
        series = found.setdefault(_key(labels), _Series([], {}))
        if part_label in sample.labels and suffix in ("", "_bucket"):
            series.parts.append((sample.labels[part_label], sample))
        elif suffix in ("_count", "_sum"):
            series.totals[suffix] = sample.value
    return found


def _created(family: MetricFamily) -> dict[Labels, int]:
    name = family.name + "_created"
    return {_key(s.labels): int(s.value * 1e9) for s in family.samples if s.name == name}


def _key(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def _exemplars(sample: Sample) -> list[Exemplar]:
    exemplar = sample.exemplar
    if exemplar is None:
        return []
    labels = dict(exemplar.labels)
    trace_id, span_id = labels.pop("trace_id", None), labels.pop("span_id", None)
    seconds = exemplar.timestamp if isinstance(exemplar.timestamp, float | int) else 0.0
    return [
        Exemplar(
            labels,
            exemplar.value,
            int(seconds * 1e9),
            span_id=int(span_id, 16) if span_id else None,
            trace_id=int(trace_id, 16) if trace_id else None,
        )
    ]
