"""`python -m bench.span_cost`: where a traced request's CPU goes, piece by piece.

Times, in this process, what tracing adds to each request: one SDK server span with the
attributes our middleware sets (started, renamed and ended through a BatchSpanProcessor), and
the OTLP encoding of that span (the exporter's own encoder, as the OTLP exporters run it in their
thread). The median of several repetitions is printed in microseconds per span.
"""

from __future__ import annotations

import statistics
import timeit

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Tracer

ATTRIBUTES = {  # what otel/middleware.py sets on a GET /items/42
    "http.request.method": "GET",
    "url.scheme": "http",
    "url.path": "/items/42",
    "network.protocol.version": "1.1",
    "client.address": "127.0.0.1",
    "server.port": 8000,
    "server.address": "localhost",
    "user_agent.original": "wrk",
}
SPANS = 512  # one full batch of the BatchSpanProcessor
REPEATS = 7


class _Discard(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _one_span(tracer: Tracer) -> None:
    span = tracer.start_span("GET", kind=SpanKind.SERVER, attributes=ATTRIBUTES)
    span.update_name("GET /items/{item_id}")
    span.set_attribute("http.route", "/items/{item_id}")
    span.set_attribute("http.response.status_code", 200)
    span.end()


def span_microseconds() -> float:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(_Discard()))
    tracer = provider.get_tracer("bench")
    times = timeit.repeat(lambda: _one_span(tracer), number=SPANS, repeat=REPEATS)
    provider.shutdown()
    return statistics.median(times) / SPANS * 1e6


def encode_microseconds() -> float:
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for _ in range(SPANS):
        _one_span(tracer)
    spans: tuple[ReadableSpan, ...] = memory.get_finished_spans()
    times = timeit.repeat(lambda: encode_spans(spans).SerializeToString(), number=1, repeat=REPEATS)
    return statistics.median(times) / SPANS * 1e6


def main() -> None:
    span, encode = span_microseconds(), encode_microseconds()
    print(f"SDK span (start, rename, 2 attributes, end, batch queue): {span:6.1f} us")
    print(f"OTLP encoding of that span (exporter thread):            {encode:6.1f} us")
    print(f"together, per traced request:                            {span + encode:6.1f} us")


if __name__ == "__main__":
    main()
