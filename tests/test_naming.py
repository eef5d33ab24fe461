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
