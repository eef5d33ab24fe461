"""SDK Views built from the contract table: they give each instrument its documented name."""

from __future__ import annotations

from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from otel.metrics.contract import CONTRACT, MetricSpec


def contract_views() -> list[View]:
    return [_view(spec) for spec in CONTRACT]


def _view(spec: MetricSpec) -> View:
    aggregation = (
        ExplicitBucketHistogramAggregation(boundaries=list(spec.buckets)) if spec.buckets else None
    )
    return View(
        instrument_name=spec.instrument,
        name=spec.stream,
        description=spec.description,
        attribute_keys=set(spec.attributes),
        aggregation=aggregation,
    )
