"""Spans from the in-memory exporter: names, attributes, DB and Redis children, propagation."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from otel import TelemetryConfig, setup_telemetry
from tests.conftest import make_client

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def traced(spans: InMemorySpanExporter) -> TelemetryConfig:
    return TelemetryConfig(span_processors=(SimpleSpanProcessor(spans),))


@pytest.fixture
def api(postgres_url: str, redis_url: str, spans: InMemorySpanExporter) -> Iterator[TestClient]:
    with make_client(postgres_url, redis_url, config=traced(spans)) as client:
        yield client


def server_spans(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]


def test_one_server_span_per_request_named_by_route(
    api: TestClient, spans: InMemorySpanExporter
) -> None:
    memo = api.post("/memos/", json={"title": "t", "content": "c"}).json()
    spans.clear()
    api.get(f"/memos/{memo['id']}?verbose=1", headers={"user-agent": "pytest"})
    [server] = server_spans(spans)
    assert server.name == "GET /memos/{memo_id}"
    attributes = dict(server.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.route"] == "/memos/{memo_id}"
    assert attributes["http.response.status_code"] == 200
    assert attributes["url.path"] == f"/memos/{memo['id']}"
    assert attributes["url.query"] == "verbose=1"
    assert attributes["url.scheme"] == "http"
    assert attributes["user_agent.original"] == "pytest"
    names = {s.name for s in spans.get_finished_spans()}
    assert not {n for n in names if n.endswith((" http receive", " http send"))}


def test_database_and_redis_calls_are_children_of_the_request(
    api: TestClient, spans: InMemorySpanExporter
) -> None:
    memo = api.post("/memos/", json={"title": "t", "content": "c"}).json()
    spans.clear()
    api.get(f"/memos/{memo['id']}")
    finished = spans.get_finished_spans()
    [server] = [s for s in finished if s.kind == SpanKind.SERVER]
    children = [s for s in finished if s is not server]
    assert children, "no child spans"
    for child in children:
        assert child.context.trace_id == server.context.trace_id
        assert child.parent is not None and child.parent.span_id == server.context.span_id
        assert child.kind == SpanKind.CLIENT
    systems = {dict(s.attributes or {}).get("db.system") for s in children}
    assert systems == {"postgresql", "redis"}, [(s.name, s.attributes) for s in children]
    sql = [s for s in children if dict(s.attributes or {}).get("db.system") == "postgresql"]
    assert any("SELECT" in str(dict(s.attributes or {}).get("db.statement", "")) for s in sql)


def test_an_incoming_traceparent_is_the_parent(
    api: TestClient, spans: InMemorySpanExporter
) -> None:
    api.get("/health", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    [server] = server_spans(spans)
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT_ID


def test_unmatched_and_failing_requests() -> None:
    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("handler failed")

    exporter = InMemorySpanExporter()
    telemetry = setup_telemetry(app, traced(exporter))
    with TestClient(app) as client:
        client.get("/no/such/page")
        with pytest.raises(RuntimeError):
            client.get("/boom")
    unmatched, failed = server_spans(exporter)
    assert unmatched.name == "GET"
    assert "http.route" not in (unmatched.attributes or {})
    assert dict(unmatched.attributes or {})["http.response.status_code"] == 404
    assert failed.name == "GET /boom"
    assert failed.status.status_code == StatusCode.ERROR
    assert [e.name for e in failed.events] == ["exception"]
    telemetry.shutdown()


def test_openmetrics_exemplars_carry_the_trace_of_a_sampled_request(
    sqlite_url: str, spans: InMemorySpanExporter
) -> None:
    with make_client(sqlite_url, config=traced(spans)) as client:
        client.get("/memos/")
        text = client.get("/metrics", headers={"accept": "application/openmetrics-text"}).text
        plain = client.get("/metrics").text
    traces = {format(s.context.trace_id, "032x") for s in server_spans(spans)}
    found = re.findall(
        r'^fastapi_request_duration_seconds_bucket\{endpoint="/memos/".*'
        r'# \{span_id="([0-9a-f]{16})",trace_id="([0-9a-f]{32})"\} ([0-9.e-]+) ([0-9.]+)$',
        text,
        re.M,
    )
    assert found, text
    assert {trace for _, trace, _, _ in found} <= traces
    assert "# {" not in plain  # the text format stays exactly as the contract says


def test_tracing_off_builds_no_tracer() -> None:
    app = FastAPI()
    telemetry = setup_telemetry(app, TelemetryConfig())
    assert telemetry.tracer_provider is None
    telemetry.shutdown()


def test_a_request_with_an_unsampled_parent_exports_nothing_not_even_its_children(
    api: TestClient, spans: InMemorySpanExporter
) -> None:
    memo = api.post("/memos/", json={"title": "t", "content": "c"}).json()
    api.get(f"/memos/{memo['id']}")  # cached now: the next read is a Redis call
    spans.clear()
    unsampled = f"00-{TRACE_ID}-{PARENT_ID}-00"
    api.post("/memos/", json={"title": "u", "content": "c"}, headers={"traceparent": unsampled})
    api.get(f"/memos/{memo['id']}", headers={"traceparent": unsampled})
    assert spans.get_finished_spans() == ()
    api.get(f"/memos/{memo['id']}", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    systems = {dict(s.attributes or {}).get("db.system") for s in spans.get_finished_spans()}
    assert "redis" in systems
