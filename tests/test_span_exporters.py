"""The OTLP/HTTP span exporter with our encoding keeps what the SDK's export() does: a batch that
fails to encode or is over max_request_size is dropped as FAILURE; nothing is sent after
shutdown. Requests land in the in-test receiver, decoded from the wire."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel.traces.span_exporters import OTLPHttpSpanExporter
from tests.otlp_receiver import Received, http_receiver


def spans(count: int, attribute_size: int = 10) -> Sequence[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for i in range(count):
        with tracer.start_as_current_span(f"span-{i}") as span:
            span.set_attribute("payload", "x" * attribute_size)
    return memory.get_finished_spans()


def sent_spans(received: Received) -> int:
    return sum(
        len(scope.spans)
        for request in received.traces
        for resource in request.resource_spans
        for scope in resource.scope_spans
    )


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    with http_receiver() as (endpoint, received):
        yield f"{endpoint}/v1/traces", received


def test_a_batch_within_the_limit_is_sent(receiver: tuple[str, Received]) -> None:
    url, received = receiver
    exporter = OTLPHttpSpanExporter(endpoint=url, max_request_size=10_000)
    assert exporter.export(spans(3)) is SpanExportResult.SUCCESS
    assert sent_spans(received) == 3


def test_a_batch_over_max_request_size_is_dropped(receiver: tuple[str, Received]) -> None:
    url, received = receiver
    exporter = OTLPHttpSpanExporter(endpoint=url, max_request_size=10_000)
    assert exporter.export(spans(20, attribute_size=1_000)) is SpanExportResult.FAILURE
    assert exporter.export(spans(1)) is SpanExportResult.SUCCESS
    assert sent_spans(received) == 1


def test_a_batch_that_fails_to_encode_is_a_failure_not_an_exception(
    receiver: tuple[str, Received], caplog: pytest.LogCaptureFixture
) -> None:
    url, received = receiver
    exporter = OTLPHttpSpanExporter(endpoint=url)
    broken = [*spans(1), object()]
    assert exporter.export(broken) is SpanExportResult.FAILURE  # type: ignore[arg-type]
    assert "Failed to encode span batch" in caplog.text
    assert sent_spans(received) == 0


def test_nothing_is_sent_after_shutdown(receiver: tuple[str, Received]) -> None:
    url, received = receiver
    exporter = OTLPHttpSpanExporter(endpoint=url)
    exporter.shutdown()
    assert exporter.export(spans(1)) is SpanExportResult.FAILURE
    assert sent_spans(received) == 0
