"""The middleware's ServerTracer against the SDK's own Tracer: the same spans reach the processors.

Each case runs the same requests through two apps that differ only in what starts the server
span, and compares every exported field but the random ids and the clocks.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    ReadableSpan,
    Span,
    SpanLimits,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBasedTraceIdRatio,
    Sampler,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, StatusCode

from otel.metrics.aggregator import RequestAggregator
from otel.middleware import TelemetryMiddleware
from otel.routes import RouteTemplates
from otel.traces.provider import build_tracing
from otel.traces.server_span import ServerSpan, ServerTracer

SAMPLED_PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
UNSAMPLED_PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"


class Starts(SpanProcessor):
    """Records what on_start saw, as a processor a user adds would."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.names.append(span.name)
        span.set_attribute("added.on_start", True)


class SdkServerSpans:
    """The SDK's own Tracer behind the middleware's span starter: the oracle."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def start_server_span(
        self, name: str, context: Context | None, attributes: Callable[[], dict[str, Any]]
    ) -> trace.Span:
        return self.tracer.start_span(name, context, SpanKind.SERVER, attributes())


def build_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/enriched")
    async def enriched() -> dict[str, str]:
        span = trace.get_current_span()
        span.set_attribute("memo.id", 7)
        span.set_attribute("memo.tags", ("a", "b"))
        span.set_attributes({"memo.title": "메모", "memo.ratio": 0.5, "memo.none": None})  # type: ignore[dict-item]
        span.add_event("cache miss", {"key": "memo:7"})
        span.add_link(trace.SpanContext(0xABC, 0xDEF, False), {"why": "batch"})
        span.update_name("custom name")
        span.set_status(StatusCode.ERROR, "handled")
        return {"status": "ok"}

    @app.get("/ok-then-boom")
    async def ok_then_boom() -> None:
        trace.get_current_span().set_status(StatusCode.OK)
        raise RuntimeError("boom")

    return app


def exported(server_tracer: bool, requests: Callable[[TestClient], None]) -> list[dict[str, Any]]:
    """The spans one app exports for `requests`, without ids and times."""
    memory, starts = InMemorySpanExporter(), Starts()
    resource = Resource({"service.name": "equivalence"})
    tracing = build_tracing((), (starts, SimpleSpanProcessor(memory)), resource, {}, "otel.fastapi")
    assert tracing is not None
    app = build_app()
    tracer = (
        tracing.server_tracer
        if server_tracer
        else SdkServerSpans(tracing.provider.get_tracer("otel.fastapi"))
    )
    app.add_middleware(
        TelemetryMiddleware, recorder=RequestAggregator(), routes=RouteTemplates(app), tracer=tracer
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        requests(client)
    tracing.provider.shutdown()
    return [described(span) for span in memory.get_finished_spans()] + [{"starts": starts.names}]


def described(span: ReadableSpan) -> dict[str, Any]:
    context, parent = span.context, span.parent
    assert context is not None and span.instrumentation_scope is not None
    return {
        "name": span.name,
        "kind": span.kind,
        "attributes": dict(span.attributes or {}),
        "dropped attributes": span.dropped_attributes,
        "status": (span.status.status_code, span.status.description),
        "events": [
            (e.name, {k: v for k, v in (e.attributes or {}).items() if k != "exception.stacktrace"})
            for e in span.events
        ],
        "stack": [bool("RuntimeError: boom" in str(e.attributes)) for e in span.events],
        "dropped events": span.dropped_events,
        "links": [(link.context.span_id, dict(link.attributes or {})) for link in span.links],
        "trace id": context.trace_id if parent else "new",
        "flags": int(context.trace_flags),
        "parent": (parent.span_id, parent.is_remote) if parent else None,
        "resource": dict(span.resource.attributes),
        "scope": (span.instrumentation_scope.name, span.instrumentation_scope.version),
        "times": span.start_time is not None and span.end_time >= span.start_time,  # type: ignore[operator]
    }


CASES: dict[str, Callable[[TestClient], None]] = {
    "plain request": lambda c: c.get("/items/42?q=1", headers={"user-agent": "pytest"}),
    "unmatched path": lambda c: c.get("/nowhere"),
    "raised handler": lambda c: c.get("/boom"),
    "handler enriches the span": lambda c: c.get("/enriched"),
    "handler sets OK, a later error cannot override it": lambda c: c.get("/ok-then-boom"),
    "sampled remote parent": lambda c: c.get("/items/1", headers={"traceparent": SAMPLED_PARENT}),
    "unsampled remote parent": lambda c: c.get(
        "/items/1", headers={"traceparent": UNSAMPLED_PARENT}
    ),
    "unknown method": lambda c: c.request("PURGE", "/items/1"),
}


def test_headers_given_as_any_iterable_reach_every_propagator() -> None:
    headers = [(b"traceparent", SAMPLED_PARENT.encode()), (b"baggage", b"team=club")]
    scope = {"type": "http", "method": "GET", "path": "/", "headers": iter(headers)}
    tracing = build_tracing((), (Starts(),), Resource({}), {}, "otel.fastapi")
    assert tracing is not None
    app = build_app()
    middleware = TelemetryMiddleware(
        app, recorder=RequestAggregator(), routes=RouteTemplates(app), tracer=tracing.server_tracer
    )
    span, token = middleware._start_span(scope, "GET")
    try:
        assert f"{span.get_span_context().trace_id:032x}" == SAMPLED_PARENT.split("-")[1]
        assert baggage.get_baggage("team") == "club"
    finally:
        otel_context.detach(token)


@pytest.mark.parametrize("case", CASES)
def test_same_spans_as_the_sdk_tracer(case: str) -> None:
    sdk, ours = exported(False, CASES[case]), exported(True, CASES[case])
    assert ours == sdk
    assert len(sdk) >= 1


LIMITS = {
    "value length": {"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "5"},
    "attribute count": {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "3"},
    "event and link counts": {
        "OTEL_SPAN_EVENT_COUNT_LIMIT": "0",
        "OTEL_SPAN_LINK_COUNT_LIMIT": "0",
    },
    "sampled out": {"OTEL_TRACES_SAMPLER": "always_off"},
    # Deterministic: roots are dropped, the request with a sampled parent is kept.
    "ratio sampler": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0",
    },
}


@pytest.mark.parametrize("case", LIMITS)
def test_limits_and_samplers_apply_as_on_sdk_spans(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in LIMITS[case].items():
        monkeypatch.setenv(name, value)

    def requests(client: TestClient) -> None:
        client.get("/enriched")
        client.get("/items/123456", headers={"traceparent": SAMPLED_PARENT})

    assert exported(True, requests) == exported(False, requests)


def test_the_server_span_is_ours_and_children_are_sdk_spans() -> None:
    kinds: list[str] = []

    class Kinds(SpanProcessor):
        def on_start(self, span: Span, parent_context: Context | None = None) -> None:
            kinds.append(type(span).__name__)

    tracing = build_tracing((), (Kinds(),), Resource({}), {}, "otel.fastapi")
    assert tracing is not None
    app = FastAPI()
    child_tracer = tracing.provider.get_tracer("child")

    @app.get("/")
    async def root() -> dict[str, bool]:
        server = trace.get_current_span()
        with child_tracer.start_as_current_span("child") as child:
            parent = child.parent  # type: ignore[attr-defined]
            return {
                "server span is ours": isinstance(server, ServerSpan),
                "parented": parent.span_id == server.get_span_context().span_id,
            }

    app.add_middleware(
        TelemetryMiddleware,
        recorder=RequestAggregator(),
        routes=RouteTemplates(app),
        tracer=tracing.server_tracer,
    )
    with TestClient(app) as client:
        assert client.get("/").json() == {"server span is ours": True, "parented": True}
    assert kinds == ["ServerSpan", "_Span"]


@pytest.fixture
def ended_span() -> Iterator[trace.Span]:
    tracing = build_tracing((), (SpanProcessor(),), Resource({}), {}, "otel.fastapi")
    assert tracing is not None
    span = tracing.server_tracer.start_span("GET", attributes={"a": 1})
    span.end()
    yield span


def test_an_ended_span_ignores_changes_and_says_so(
    ended_span: trace.Span, caplog: pytest.LogCaptureFixture
) -> None:
    ended_span.set_attribute("late", 1)
    ended_span.update_name("late")
    ended_span.end()
    assert not ended_span.is_recording()
    assert "late" not in ended_span.attributes  # type: ignore[attr-defined]
    assert ended_span.name == "GET"  # type: ignore[attr-defined]
    assert len([r for r in caplog.records if "has ended" in r.getMessage()]) == 3


def test_after_a_fork_server_spans_carry_the_childs_resource_as_sdk_spans_do() -> None:
    """gunicorn --preload forks workers from a process that already built the provider."""
    memory = InMemorySpanExporter()
    tracing = build_tracing(
        [], [SimpleSpanProcessor(memory)], Resource.create({"service.name": "t"}), {}, "t"
    )
    assert tracing is not None
    parent_id = tracing.provider.resource.attributes["service.instance.id"]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the instance ids its spans carry, then leave at once
        try:
            tracing.server_tracer.start_span("ours").end()
            tracing.provider.get_tracer("t").start_span("sdk").end()
            ids = {
                s.name: s.resource.attributes["service.instance.id"]
                for s in memory.get_finished_spans()
            }
            os.write(write, json.dumps(ids).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        ids = json.loads(pipe.read())
    os.waitpid(pid, 0)
    assert ids["ours"] == ids["sdk"] != parent_id


class CountingIds(RandomIdGenerator):
    """Someone's own generator (a subclass, its ids not random): its methods are asked."""

    def __init__(self) -> None:
        self.drawn = 0

    def generate_trace_id(self) -> int:
        self.drawn += 1
        return self.drawn << 64 | 7

    def generate_span_id(self) -> int:
        self.drawn += 1
        return self.drawn

    def is_trace_id_random(self) -> bool:
        return False


def new_trace(use_ours: bool, generator: IdGenerator, sampler: Sampler) -> trace.SpanContext:
    provider = TracerProvider(id_generator=generator, sampler=sampler, shutdown_on_exit=False)
    context = Context()  # what a request without trace headers gives
    if use_ours:
        tracer = ServerTracer(
            sampler=sampler,
            id_generator=generator,
            resource=lambda: provider.resource,
            processor=SynchronousMultiSpanProcessor(),  # type: ignore[no-untyped-call]
            limits=SpanLimits(),
            scope=InstrumentationScope("otel.fastapi", ""),
        )
        span = tracer.start_server_span("GET", context, dict)
    else:
        span = provider.get_tracer("otel.fastapi").start_span("GET", context, SpanKind.SERVER)
    return span.get_span_context()


@pytest.mark.parametrize("generator", [RandomIdGenerator, CountingIds])
@pytest.mark.parametrize(
    "sampler", [ALWAYS_ON, ALWAYS_OFF, ParentBasedTraceIdRatio(0.5)], ids=["on", "off", "ratio"]
)
def test_a_new_trace_gets_the_ids_and_flags_the_sdk_tracer_gives_it(
    generator: type[IdGenerator], sampler: Sampler
) -> None:
    for seed in range(40):
        random.seed(seed)
        sdk = new_trace(False, generator(), sampler)
        random.seed(seed)
        ours = new_trace(True, generator(), sampler)
        assert (ours.trace_id, ours.span_id, ours.trace_flags) == (
            sdk.trace_id,
            sdk.span_id,
            sdk.trace_flags,
        )
        assert ours.is_valid and not ours.is_remote
