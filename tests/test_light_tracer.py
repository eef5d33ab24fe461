"""`LightTracer`: spans started through it export as the SDK tracer's own do (the oracle: the
SDK tracer of the same provider, run through the same calls), and what the light span does not
take goes to the SDK tracer."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider, _TracerConfig
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags

from otel.traces.light_tracer import LightTracer, LightTracerProvider, light_tracer
from otel.traces.server_span import ServerSpan
from tests.test_server_span import described


class Started(SpanProcessor):
    """The class of every span the provider's processors are told of."""

    def __init__(self) -> None:
        self.classes: list[type] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.classes.append(type(span))


def pipeline() -> tuple[TracerProvider, InMemorySpanExporter, Started]:
    provider = TracerProvider(resource=Resource({"service.name": "light"}))
    memory, started = InMemorySpanExporter(), Started()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(started)
    return provider, memory, started


def child_calls(tracer: trace.Tracer) -> None:
    """What the instrumentations do, and a few things they might."""
    with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as span:
        span.set_attribute("db.system", "redis")
        span.set_attributes({"db.statement": "GET ?", "net.peer.port": 6379})
        tracer.start_span("nested").end()
    span = tracer.start_span("SELECT memo", kind=SpanKind.CLIENT, attributes={"k": "v"})
    with trace.use_span(span, end_on_exit=False):
        span.set_attribute("db.statement", "SELECT 1")
    span.end()
    with pytest.raises(RuntimeError), tracer.start_as_current_span("failing"):
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError), tracer.start_span("failing, as a context manager"):
        raise RuntimeError("boom")


CASES: dict[str, Callable[[trace.Tracer], None]] = {
    "child calls": child_calls,
    "with links": lambda t: t.start_span("linked", links=[Link(OTHER, {"a": 1})]).end(),
    "with a start time": lambda t: t.start_span("timed", start_time=1_000).end(),
    "exceptions not recorded": lambda t: _unrecorded(t),
}
OTHER = SpanContext(0x1, 0x2, is_remote=True, trace_flags=TraceFlags(1))


def _unrecorded(tracer: trace.Tracer) -> None:
    with pytest.raises(RuntimeError), tracer.start_as_current_span("quiet", record_exception=False):
        raise RuntimeError("boom")


def exported(case: str, light: bool) -> tuple[list[dict[str, Any]], list[type]]:
    provider, memory, started = pipeline()
    tracer = provider.get_tracer("scope", "1.0", "https://opentelemetry.io/schemas/1.11.0")
    random.seed(5)  # the same ids, drawn in the same order by both
    CASES[case](light_tracer(tracer) if light else tracer)
    spans: tuple[ReadableSpan, ...] = memory.get_finished_spans()
    return [described(s) for s in spans], started.classes


@pytest.mark.parametrize("case", CASES)
def test_spans_export_as_the_sdk_tracers(case: str) -> None:
    assert exported(case, light=True)[0] == exported(case, light=False)[0]


def test_plain_child_spans_are_light_and_the_rest_the_sdks() -> None:
    assert set(exported("child calls", light=True)[1]) == {ServerSpan}
    for case in ("with links", "with a start time", "exceptions not recorded"):
        assert ServerSpan not in exported(case, light=True)[1], case


def test_a_tracer_the_provider_disabled_stays_disabled() -> None:
    provider, memory, started = pipeline()
    provider._set_tracer_configurator(tracer_configurator=lambda scope: _TracerConfig(False))
    tracer = LightTracerProvider(provider).get_tracer("scope")
    assert isinstance(tracer, LightTracer)
    child_calls(tracer)
    assert memory.get_finished_spans() == () and started.classes == []


def test_the_provider_gives_the_sdks_tracer_scope_and_other_tracers_pass_through() -> None:
    provider, memory, _ = pipeline()
    schema = "https://opentelemetry.io/schemas/1.11.0"
    LightTracerProvider(provider).get_tracer("redis", "0.1", schema).start_span("x").end()
    (span,) = memory.get_finished_spans()
    assert (
        span.instrumentation_scope
        == provider.get_tracer("redis", "0.1", schema)._instrumentation_scope
    )
    other = trace.NoOpTracer()
    assert light_tracer(other) is other
