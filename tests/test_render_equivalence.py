"""The aggregator's fast exposition equals the SDK path's (instruments + Views + exporter)."""

from __future__ import annotations

import random

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from otel.export.render import render_request_metrics
from otel.metrics.aggregator import RequestAggregator
from otel.metrics.views import contract_views
from tests.sdk_recorder import SdkRequestRecorder

ENDPOINTS = ["/memos/", "/memos/{memo_id}", "<unmatched>", '/odd/"quoted"\\path']
METHODS = ["GET", "POST", "DELETE", "_OTHER"]
STATUSES = [200, 201, 204, 404, 422, 500]
# Bucket bounds themselves (le is inclusive), zero, and values past the last bound.
DURATIONS = [0.0, 0.005, 0.0050001, 0.1, 1.0, 9.99, 10.0, 10.5, 1234.5]


def requests(count: int) -> list[tuple[str, str, int, float]]:
    rng = random.Random(7)
    return [
        (rng.choice(METHODS), rng.choice(ENDPOINTS), rng.choice(STATUSES), rng.choice(DURATIONS))
        for _ in range(count)
    ]


def sdk_exposition(sequence: list[tuple[str, str, int, float]], openmetrics: bool) -> list[str]:
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(
        disable_target_info=True, scope_info_enabled=False, registry=registry
    )
    provider = MeterProvider(metric_readers=[reader], views=contract_views())
    recorder = SdkRequestRecorder(provider.get_meter("reference"))
    for request in sequence:
        recorder.record(*request)
    encoder = generate_openmetrics if openmetrics else generate_latest
    text = encoder(registry).decode()
    provider.shutdown()
    return sorted(line for line in text.splitlines() if "fastapi_" in line)


def fast_exposition(sequence: list[tuple[str, str, int, float]], openmetrics: bool) -> list[str]:
    aggregator = RequestAggregator()
    for request in sequence:
        aggregator.record(*request)
    text = render_request_metrics(aggregator.entries(), aggregator.bounds, openmetrics=openmetrics)
    return sorted(line for line in text.splitlines() if "fastapi_" in line)


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_fast_exposition_equals_the_sdk_reference(openmetrics: bool) -> None:
    sequence = requests(2000)
    assert fast_exposition(sequence, openmetrics) == sdk_exposition(sequence, openmetrics)


def test_large_counts_are_written_as_prometheus_client_writes_them() -> None:
    aggregator = RequestAggregator()
    aggregator.record("GET", "/x", 200, 0.001)
    aggregator._entries["GET", "/x"].statuses[200] = 1_234_567
    text = render_request_metrics(aggregator.entries(), aggregator.bounds, openmetrics=False)
    assert (
        'fastapi_requests_total{endpoint="/x",method="GET",status_code="200"} 1.234567e+06' in text
    )
