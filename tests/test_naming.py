"""OpenTelemetry names to Prometheus names, as the collector's Prometheus exporters write them."""

from __future__ import annotations

import pytest

from otel.metrics.naming import job_and_instance, label_name, metric_name


@pytest.mark.parametrize(
    ("name", "unit", "monotonic", "expected"),
    [
        ("fastapi_requests", "", True, "fastapi_requests_total"),
        ("fastapi_requests_total", "", True, "fastapi_requests_total"),
        ("fastapi_request_duration", "s", False, "fastapi_request_duration_seconds"),
        ("fastapi_request_duration_seconds", "s", False, "fastapi_request_duration_seconds"),
        ("memo_total", "", False, "memo_total"),
        ("http.server.duration", "ms", False, "http_server_duration_milliseconds"),
        ("process_cpu_seconds", "", True, "process_cpu_seconds_total"),
        ("bytes.sent", "By", True, "bytes_sent_total"),  # "bytes" is already a token
        ("network.io", "By", True, "network_io_bytes_total"),
        ("requests.total.served", "", True, "requests_served_total"),
        ("process_cpu_seconds", "s", True, "process_cpu_seconds_total"),
        ("objects", "1", True, "objects_total"),
        ("throughput", "By/s", False, "throughput_bytes_per_second"),
        ("queue.items", "{items}", False, "queue_items"),
        ("2xx.count", "", True, "_2xx_count_total"),
    ],
)
def test_metric_names(name: str, unit: str, monotonic: bool, expected: str) -> None:
    assert metric_name(name, unit, monotonic_sum=monotonic) == expected


def test_unit_one_is_a_ratio_for_gauges_only() -> None:
    assert metric_name("cpu.utilization", "1", monotonic_sum=False, gauge=True) == (
        "cpu_utilization_ratio"
    )
    assert metric_name("cpu.utilization", "1", monotonic_sum=False) == "cpu_utilization"


def test_label_names_are_sanitised() -> None:
    assert label_name("http.route") == "http_route"
    assert label_name("2fa") == "key2fa"


def test_job_and_instance_come_from_the_resource() -> None:
    resource = {"service.name": "fastapi", "service.instance.id": "abc"}
    assert job_and_instance(resource) == ("fastapi", "abc")
    assert job_and_instance({**resource, "service.namespace": "club"}) == ("club/fastapi", "abc")


# Upstream's own cases: prometheus/otlptranslator, metric_namer_test.go (TestMetricNamer_Build,
# the cases with UTF8Allowed=false, WithMetricSuffixes=true and no namespace), the translation
# behind the collector's `UnderscoreEscapingWithSuffixes`. Each row: upstream's case name, then
# its metric (name, unit, type) and wantMetricName, as recorded there.
OTLPTRANSLATOR_CASES = [
    ("counter metric with total suffix", "requests", "", "counter", "requests_total"),
    ("gauge with unit 1 gets ratio suffix", "cpu_usage", "1", "gauge", "cpu_usage_ratio"),
    ("counter with unit 1 does not get ratio suffix", "items", "1", "counter", "items_total"),
    ("metric with time unit", "response_time", "ms", "gauge", "response_time_milliseconds"),
    ("metric with bytes unit", "memory_usage", "By", "gauge", "memory_usage_bytes"),
    ("metric with per unit", "requests", "1/s", "gauge", "requests_per_second"),
    ("metric with complex per unit", "throughput", "By/s", "gauge", "throughput_bytes_per_second"),
    (
        "metric with unknown unit",
        "custom_metric",
        "custom_unit",
        "gauge",
        "custom_metric_custom_unit",
    ),
    (
        "metric with unit containing braces is ignored",
        "custom_metric",
        "{custom}",
        "gauge",
        "custom_metric",
    ),
    (
        "metric with per unit containing braces is ignored",
        "custom_metric",
        "By/{custom}",
        "gauge",
        "custom_metric_bytes",
    ),
    (
        "metric name already contains total suffix",
        "requests_total",
        "",
        "counter",
        "requests_total",
    ),
    (
        "metric name already contains ratio suffix",
        "cpu_usage_ratio",
        "1",
        "gauge",
        "cpu_usage_ratio",
    ),
    (
        "metric name already contains unit suffix",
        "response_time_seconds",
        "s",
        "gauge",
        "response_time_seconds",
    ),
    (
        "metric with multiple underscores normalized",
        "metric__with__multiple__underscores",
        "unit__multiple__underscores",
        "gauge",
        "metric_with_multiple_underscores_unit_multiple_underscores",
    ),
    (
        "metric with special chars in unit",
        "custom_metric",
        "unit@with#special/chars",
        "gauge",
        "custom_metric_unit_with_special_per_chars",
    ),
    ("histogram metric type", "request_duration", "s", "histogram", "request_duration_seconds"),
    (
        "non-monotonic counter metric type",
        "active_connections",
        "",
        "updowncounter",
        "active_connections",
    ),
    ("metric with days unit", "uptime", "d", "gauge", "uptime_days"),
    ("metric with hours unit", "duration", "h", "gauge", "duration_hours"),
]
# Where otel/metrics/naming.py still differs from upstream's cases (none of them touches a unit the
# contract uses): strict, so that the fix shows as an XPASS failure here.
DIFFERS = {
    "metric with per unit": "gives requests_1_per_second: the numerator 1 is kept",
    "metric with per unit containing braces is ignored": "keeps the braced denominator",
    "metric with multiple underscores normalized": "keeps the unit's double underscores",
    "metric with special chars in unit": "drops the final s of a per-unit it does not know",
}


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        pytest.param(
            *case[1:],
            id=case[0],
            marks=[pytest.mark.xfail(reason=DIFFERS[case[0]], strict=True)]
            if case[0] in DIFFERS
            else [],
        )
        for case in OTLPTRANSLATOR_CASES
    ],
)
def test_metric_names_as_otlptranslator_names_them(
    name: str, unit: str, kind: str, expected: str
) -> None:
    assert metric_name(name, unit, monotonic_sum=kind == "counter", gauge=kind == "gauge") == (
        expected
    )
