"""The naming rule against upstream's own test cases (github.com/prometheus/otlptranslator, with
our collector's settings): tests/data/otlptranslator_cases.json names where each case came from."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from otel.metrics.naming import (
    MetricType,
    NamingError,
    job_and_instance,
    label_name,
    metric_name,
    prometheus_labels,
    unit_name,
)

CASES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "otlptranslator_cases.json").read_text()
)


def case_id(case: dict[str, Any]) -> str:
    return f"{case['test']}/{case['case']}"


@pytest.mark.parametrize("case", CASES["metric_names"], ids=case_id)
def test_metric_names_as_upstream(case: dict[str, Any]) -> None:
    metric_type = MetricType(case["type"])
    if case["want_error"]:
        with pytest.raises(NamingError, match=f"^{re.escape(case['want_error'])}$"):
            metric_name(case["name"], case["unit"], metric_type)
    else:
        assert metric_name(case["name"], case["unit"], metric_type) == case["want"]


@pytest.mark.parametrize("case", CASES["unit_names"], ids=case_id)
def test_unit_names_as_upstream(case: dict[str, Any]) -> None:
    assert unit_name(case["unit"]) == case["want"]


@pytest.mark.parametrize("case", CASES["label_names"], ids=case_id)
def test_label_names_as_upstream(case: dict[str, Any]) -> None:
    if case["want_error"]:
        with pytest.raises(NamingError, match=f"^{re.escape(case['want_error'])}$"):
            label_name(case["label"])
    else:
        assert label_name(case["label"]) == case["want"]


def test_every_case_says_where_it_came_from() -> None:
    cases = [c for group in ("metric_names", "unit_names", "label_names") for c in CASES[group]]
    assert len(cases) > 100
    commit = CASES["upstream"]["commit"]
    for case in cases:
        assert case["source"].startswith("https://github.com/"), case
        assert commit in case["source"] or "opentelemetry-collector-contrib" in case["source"]
        assert case["test"].startswith("Test")


def test_keys_that_collide_keep_every_value_in_key_order() -> None:
    # Prometheus's OTLP translator joins colliding values with ";" (createAttributes).
    assert prometheus_labels([("a_b", "2"), ("a.b", "1"), ("2fa", "x")]) == {
        "a_b": "1;2",
        "key_2fa": "x",
    }


def test_non_string_values_are_json() -> None:
    assert prometheus_labels([("ok", True), ("n", 3), ("xs", ["a", 1])]) == {
        "ok": "true",
        "n": "3",
        "xs": '["a",1]',
    }


def test_job_and_instance_come_from_the_resource() -> None:
    resource = {"service.name": "fastapi", "service.instance.id": "abc"}
    assert job_and_instance(resource) == ("fastapi", "abc")
    assert job_and_instance({**resource, "service.namespace": "club"}) == ("club/fastapi", "abc")
