"""`python -m bench.span_cost`: what a traced request costs, piece by piece, SDK against ours.

Times, in this process, the two parts tracing adds to each request, each done the SDK's way and
ours: the server span (started with the attributes our middleware sets, renamed, given its
route and status, ended into a BatchSpanProcessor) and its OTLP encoding (what the exporter
thread does per span). The median of several repetitions, in microseconds per span.
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable, Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel.traces.provider import build_tracing
from otel.traces.span_encoding import encode_spans

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
Starter = Callable[..., object]


class _Discard(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _one_span(start_span: Starter) -> None:
    span = start_span("GET", kind=SpanKind.SERVER, attributes=ATTRIBUTES)
    span.update_name("GET /items/{item_id}")  # type: ignore[attr-defined]
    span.set_attribute("http.route", "/items/{item_id}")  # type: ignore[attr-defined]
    span.set_attribute("http.response.status_code", 200)  # type: ignore[attr-defined]
    span.end()  # type: ignore[attr-defined]


def _starters(processor: object) -> dict[str, Starter]:
    tracing = build_tracing((), (processor,), Resource({"service.name": "bench"}), {}, "bench")
    assert tracing is not None
    return {
        "sdk": tracing.provider.get_tracer("bench").start_span,
        "ours": tracing.server_tracer.start_span,
    }


def span_microseconds() -> dict[str, float]:
    starters = _starters(BatchSpanProcessor(_Discard()))
    return {name: _per_span(lambda s=s: _one_span(s), SPANS) for name, s in starters.items()}


def encode_microseconds() -> dict[str, float]:
    memory = InMemorySpanExporter()
    for start in _starters(SimpleSpanProcessor(memory)).values():
        for _ in range(SPANS // 2):
            _one_span(start)
    spans: Sequence[ReadableSpan] = memory.get_finished_spans()
    return {
        "sdk": _per_span(lambda: sdk_encode(spans).SerializeToString(), 1, len(spans)),
        "ours": _per_span(lambda: encode_spans(spans), 1, len(spans)),
    }


def _per_span(work: Callable[[], object], number: int, spans: int = 1) -> float:
    times = timeit.repeat(work, number=number, repeat=REPEATS)
    return statistics.median(times) / (number * spans) * 1e6


def main() -> None:
    span, encode = span_microseconds(), encode_microseconds()
    together = {name: span[name] + encode[name] for name in span}
    print(f"{'us per span':48s}{'SDK':>8s}{'ours':>8s}")
    for label, row in (
        ("server span (start, rename, 2 attributes, end)", span),
        ("OTLP encoding (exporter thread)", encode),
        ("together, per traced request", together),
    ):
        print(f"{label:48s}{row['sdk']:8.1f}{row['ours']:8.1f}")


if __name__ == "__main__":
    main()
