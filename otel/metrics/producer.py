"""The aggregator's request metrics as OpenTelemetry data, for the push exporters.

A `RequestMetricsProducer` plays the part of the spec's MetricProducer: at every export it turns
the aggregator's state into SDK `Metric` points under the contract's stream names, cumulative or
delta as the exporter prefers, with the exemplars of sampled requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import time_ns

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    Sum,
)

from otel.metrics.aggregator import Entry, RequestAggregator
from otel.metrics.contract import REQUEST_DURATION, REQUESTS


@dataclass
class _Previous:
    statuses: dict[int, int]
    buckets: list[int]
    sum: float


class RequestMetricsProducer:
    def __init__(self, aggregator: RequestAggregator, temporality: AggregationTemporality) -> None:
        self._aggregator = aggregator
        self._delta = temporality == AggregationTemporality.DELTA
        self._temporality = temporality
        self._last_collection_ns = aggregator.start_time_ns
        self._previous: dict[tuple[str, str], _Previous] = {}

    def produce(self) -> list[Metric]:
        now = time_ns()
        start = self._last_collection_ns if self._delta else self._aggregator.start_time_ns
        entries = self._aggregator.entries()
        if self._delta:
            entries = [self._delta_of(entry) for entry in entries]
        self._last_collection_ns = now
        counts = [
            NumberDataPoint(
                attributes={"method": e.method, "endpoint": e.endpoint, "status_code": str(code)},
                start_time_unix_nano=start,
                time_unix_nano=now,
                value=value,
            )
            for e in entries
            for code, value in sorted(e.statuses.items())
        ]
        durations = [self._histogram_point(e, start, now) for e in entries]
        return [
            Metric(
                name=REQUESTS.stream,
                description=REQUESTS.description,
                unit=REQUESTS.unit,
                data=Sum(counts, self._temporality, is_monotonic=True),
            ),
            Metric(
                name=REQUEST_DURATION.stream,
                description=REQUEST_DURATION.description,
                unit=REQUEST_DURATION.unit,
                data=Histogram(durations, self._temporality),
            ),
        ]

    def _histogram_point(self, entry: Entry, start: int, now: int) -> HistogramDataPoint:
        return HistogramDataPoint(
            attributes={"method": entry.method, "endpoint": entry.endpoint},
            start_time_unix_nano=start,
            time_unix_nano=now,
            count=entry.count,
            sum=entry.sum,
            bucket_counts=entry.buckets,
            explicit_bounds=list(self._aggregator.bounds),
            min=None,  # type: ignore[arg-type]  # not tracked: optional in OTLP
            max=None,  # type: ignore[arg-type]
            exemplars=[
                Exemplar({}, e.value, e.time_unix_nano, span_id=e.span_id, trace_id=e.trace_id)
                for e in entry.exemplars or ()
                if e is not None and e.time_unix_nano >= start
            ],
        )

    def _delta_of(self, entry: Entry) -> Entry:
        key = (entry.method, entry.endpoint)
        before = self._previous.get(key) or _Previous({}, [0] * len(entry.buckets), 0.0)
        self._previous[key] = _Previous(dict(entry.statuses), list(entry.buckets), entry.sum)
        return Entry(
            entry.method,
            entry.endpoint,
            {c: n - before.statuses.get(c, 0) for c, n in entry.statuses.items()},
            [n - b for n, b in zip(entry.buckets, before.buckets, strict=True)],
            entry.sum - before.sum,
            entry.exemplars,
        )
