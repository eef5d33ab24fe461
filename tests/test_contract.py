"""Golden test: the exposition lines of the metric contract for a known sequence of requests."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from otel.metrics.contract import CONTRACT, DURATION_BUCKETS, UNMATCHED_ENDPOINT, scraped_series
from tests.helpers import ORIGINAL_HELP, RUNTIME_SERIES

ORIGINAL_HELP_LINES = [f"# HELP {name} {text}" for name, text in ORIGINAL_HELP.items()]

BUCKET_LABELS = [
    "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75",
    "1.0", "2.5", "5.0", "7.5", "10.0", "+Inf",
]  # fmt: skip


CONTRACT_PREFIXES = (
    "fastapi_", "memo_total", "# HELP fastapi", "# TYPE fastapi", "# HELP memo", "# TYPE memo",
)  # fmt: skip


def contract_lines(text: str) -> list[str]:
    """The lines a dashboard depends on, with measured durations masked."""
    kept = []
    for line in text.splitlines():
        if not line.startswith(CONTRACT_PREFIXES):
            continue
        if line.startswith("fastapi_request_duration_seconds_sum"):
            line = re.sub(r" \S+$", " <seconds>", line)
        kept.append(line)
    return kept


def drive(client: TestClient) -> None:
    client.post("/memos/", json={"title": "a", "content": "b"})
    client.post("/memos/", json={"title": "c", "content": "d"})
    client.get("/memos/1")
    client.get("/memos/2")
    client.get("/memos/999")
    client.delete("/memos/2")
    client.post("/memos/", json={"title": ""})
    client.get("/no/such/page")


def test_exposition_matches_the_contract(client: TestClient) -> None:
    drive(client)
    lines = contract_lines(client.get("/metrics").text)

    requests = [line for line in lines if line.startswith("fastapi_requests_total")]
    assert sorted(requests) == sorted(
        [
            f'fastapi_requests_total{{endpoint="{UNMATCHED_ENDPOINT}",method="GET",'
            'status_code="404"} 1.0',
            'fastapi_requests_total{endpoint="/memos/",method="POST",status_code="201"} 2.0',
            'fastapi_requests_total{endpoint="/memos/",method="POST",status_code="422"} 1.0',
            'fastapi_requests_total{endpoint="/memos/{memo_id}",method="DELETE",'
            'status_code="204"} 1.0',
            'fastapi_requests_total{endpoint="/memos/{memo_id}",method="GET",'
            'status_code="200"} 2.0',
            'fastapi_requests_total{endpoint="/memos/{memo_id}",method="GET",'
            'status_code="404"} 1.0',
        ]
    )
    assert "# TYPE fastapi_requests_total counter" in lines
    # The original service's HELP texts, word for word.
    for help_line in ORIGINAL_HELP_LINES:
        assert help_line in lines
    assert "# TYPE fastapi_request_duration_seconds histogram" in lines
    assert "# TYPE memo_total gauge" in lines
    assert "# TYPE fastapi_active_connections gauge" in lines
    assert "memo_total 1.0" in lines
    assert "fastapi_active_connections 0.0" in lines

    get_memo = 'endpoint="/memos/{memo_id}",method="GET"'
    assert f"fastapi_request_duration_seconds_count{{{get_memo}}} 3.0" in lines
    assert f"fastapi_request_duration_seconds_sum{{{get_memo}}} <seconds>" in lines
    bucket_lines = [
        line
        for line in lines
        if line.startswith('fastapi_request_duration_seconds_bucket{endpoint="/memos/{memo_id}"')
        and 'method="GET"' in line
    ]
    assert [re.search(r'le="([^"]+)"', line)[1] for line in bucket_lines] == BUCKET_LABELS  # type: ignore[index]
    assert bucket_lines[-1].endswith(" 3.0")
    assert len(BUCKET_LABELS) == len(DURATION_BUCKETS) + 1


def test_no_extra_labels_or_info_series(client: TestClient) -> None:
    drive(client)
    text = client.get("/metrics").text
    assert "otel_scope" not in text
    assert "target_info" not in text
    for line in contract_lines(text):
        if line.startswith("fastapi_requests_total"):
            assert set(re.findall(r"(\w+)=", line)) == {"method", "endpoint", "status_code"}
        elif line.startswith("fastapi_request_duration_seconds_bucket"):
            assert set(re.findall(r"(\w+)=", line)) == {"method", "endpoint", "le"}


def test_runtime_series_are_served(client: TestClient) -> None:
    text = client.get("/metrics").text
    for name in RUNTIME_SERIES:
        assert re.search(rf"^{name}[{{ ]", text, re.M), name
    assert 'python_gc_collections_total{generation="0"}' in text


def test_scrapes_are_not_counted(client: TestClient) -> None:
    for _ in range(3):
        client.get("/metrics")
    assert "/metrics" not in client.get("/metrics").text


PROMETHEUS_ACCEPT = (  # what Prometheus 2.42 sends
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.mark.parametrize("accept", ["application/openmetrics-text", PROMETHEUS_ACCEPT])
def test_openmetrics_when_the_scraper_asks(client: TestClient, accept: str) -> None:
    client.get("/memos/")
    response = client.get("/metrics", headers={"Accept": accept})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
    assert response.text.count("# EOF") == 1
    assert "# TYPE fastapi_requests counter" in response.text
    assert "fastapi_requests_total{" in response.text
    plain = client.get("/metrics")
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")


def test_gzip_when_accepted(client: TestClient) -> None:
    response = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert "process_cpu_seconds_total" in response.text


def test_a_scrape_shows_every_series_the_doctor_asks_for(client: TestClient) -> None:
    """`make doctor` asks the app for scraped_series(); the app, parsed by prometheus_client's
    own parser, must show each."""
    client.get("/health")
    text = client.get("/metrics").text
    samples = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    assert set(scraped_series()) <= samples
    assert len(scraped_series()) == len(set(scraped_series())) > len(CONTRACT)
