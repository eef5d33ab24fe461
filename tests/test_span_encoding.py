"""otel.traces.span_encoding against the OTLP exporters' own encoder (the same bytes, and the same
message decoded), and its named fields against opentelemetry-proto's descriptors."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as reference
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from otel.traces import otlp_wire, span_encoding
from otel.traces.span_encoding import encode_spans

Emit = Callable[[TracerProvider], None]


def finished(emit: Emit, **provider_options: object) -> tuple[ReadableSpan, ...]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False, **provider_options)  # type: ignore[arg-type]
    provider.add_span_processor(SimpleSpanProcessor(memory))
    emit(provider)
    spans = memory.get_finished_spans()
    assert spans, "the case emitted no span"
    return spans


def assert_same_message(spans: tuple[ReadableSpan, ...]) -> None:
    encoded = encode_spans(spans)
    ours = ExportTraceServiceRequest.FromString(encoded)
    assert ours == reference(spans), f"ours:\n{ours}\nexporters':\n{reference(spans)}"
    # Fields in number order, as protobuf serializes them: the very bytes.
    assert encoded == reference(spans).SerializeToString()
    assert_wire_types_match_the_schema(encoded, ExportTraceServiceRequest.DESCRIPTOR)


# The wire type of each protobuf field type, from the protobuf encoding's specification
# (protobuf.dev/programming-guides/encoding), read independently of otel.traces.otlp_wire.
WIRE_TYPES = {
    FieldDescriptor.TYPE_INT64: 0,
    FieldDescriptor.TYPE_UINT32: 0,
    FieldDescriptor.TYPE_BOOL: 0,
    FieldDescriptor.TYPE_ENUM: 0,
    FieldDescriptor.TYPE_FIXED64: 1,
    FieldDescriptor.TYPE_DOUBLE: 1,
    FieldDescriptor.TYPE_STRING: 2,
    FieldDescriptor.TYPE_BYTES: 2,
    FieldDescriptor.TYPE_MESSAGE: 2,
    FieldDescriptor.TYPE_FIXED32: 5,
}


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if byte < 0x80:
            return value, at


def assert_wire_types_match_the_schema(data: bytes, message: Descriptor) -> None:
    """Every tag in `data`: a field of `message` written with its type's wire type; recursively."""
    at = 0
    while at < len(data):
        tag, at = read_varint(data, at)
        number, wire_type = tag >> 3, tag & 7
        field = message.fields_by_number.get(number)
        assert field is not None, f"{message.full_name} has no field {number}"
        assert wire_type == WIRE_TYPES[field.type], f"{field.full_name}: wire type {wire_type}"
        if wire_type == 0:
            _, at = read_varint(data, at)
        elif wire_type in (1, 5):
            at += 8 if wire_type == 1 else 4
        else:
            length, at = read_varint(data, at)
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                assert_wire_types_match_the_schema(data[at : at + length], field.message_type)
            at += length
    assert at == len(data), message.full_name


def test_every_named_field_has_its_number_in_opentelemetry_proto() -> None:
    named = 0
    for message in otlp_wire.MESSAGES:
        descriptor = ExportTraceServiceRequest.DESCRIPTOR.file.pool.FindMessageTypeByName(
            inspect.getdoc(message) or ""
        )
        fields = {k: v for k, v in vars(message).items() if k.isupper()}
        assert fields, message.__name__
        for name, number in fields.items():
            assert descriptor.fields_by_name[name.lower()].number == number, f"{message}.{name}"
            named += 1
    assert named > 40


def server_span(provider: TracerProvider) -> None:
    span = provider.get_tracer("otel.fastapi").start_span(
        "GET",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "url.path": "/memos/7", "server.port": 8000},
    )
    span.update_name("GET /memos/{memo_id}")
    span.set_attribute("http.route", "/memos/{memo_id}")
    span.set_attribute("http.response.status_code", 200)
    span.end()


def every_value_type(provider: TracerProvider) -> None:
    with provider.get_tracer("t").start_as_current_span("values") as span:
        span.set_attributes(
            {
                "str": "text",
                "unicode": "메모 ✓",
                "empty": "",
                "true": True,
                "false": False,
                "zero": 0,
                "negative": -5,
                "large": 2**62,
                "smallest": -(2**63),
                "float": 0.25,
                "negative float": -1.5e300,
                "bytes": b"\x00\xff",
                "strings": ("a", "b"),
                "ints": (1, -2, 3),
                "floats": (0.5,),
                "bools": (True, False),
                "no items": (),
            }
        )


def events_links_status(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("t", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.26")
    linked = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))
    with tracer.start_as_current_span("work", links=[Link(linked, {"why": "batch"})]) as span:
        span.add_event("started", {"step": 1})
        span.add_event("bare event")
        span.record_exception(ValueError("bad memo"), {"extra": True})
        span.set_status(Status(StatusCode.ERROR, "it failed"))
    with tracer.start_as_current_span("fine", kind=SpanKind.CLIENT) as span:
        span.set_status(StatusCode.OK)


def remote_parent_with_trace_state(provider: TracerProvider) -> None:
    parent = SpanContext(
        0x1234567890ABCDEF1234567890ABCDEF,
        0x1122334455667788,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "value"), ("other", "x")]),
    )
    context = set_span_in_context(NonRecordingSpan(parent))
    tracer = provider.get_tracer("t")
    for kind in SpanKind:
        tracer.start_span(f"child {kind.name}", context=context, kind=kind).end()


def several_scopes(provider: TracerProvider) -> None:
    provider.get_tracer("a").start_span("one").end()
    provider.get_tracer("b", "2.0", attributes={"scope.attr": "x"}).start_span("two").end()
    provider.get_tracer("a").start_span("three").end()


def over_the_limits(provider: TracerProvider) -> None:
    links = [Link(SpanContext(1, n + 1, False), {"n": n}) for n in range(3)]
    span = provider.get_tracer("t").start_span("limited", links=links)
    span.set_attributes({"a": "long value", "b": 2, "c": 3, "d": (1, 2, 3)})
    for n in range(4):
        span.add_event(f"event {n}", {"x": 1, "y": 2, "z": 3})
    span.end()


CASES = {
    "server span": (server_span, {}),
    "every value type": (every_value_type, {}),
    "events, links, status": (events_links_status, {}),
    "remote parent, trace state, every kind": (remote_parent_with_trace_state, {}),
    "several scopes": (several_scopes, {}),
    "over the limits": (
        over_the_limits,
        {
            "span_limits": SpanLimits(
                max_span_attributes=2,
                max_events=2,
                max_links=1,
                max_event_attributes=1,
                max_attribute_length=4,
            )
        },
    ),
    "resource with schema url": (
        server_span,
        {"resource": Resource({"service.name": "memo"}, "https://opentelemetry.io/schemas/1.21")},
    ),
    "empty resource": (server_span, {"resource": Resource({})}),
}


@pytest.mark.parametrize("case", CASES)
def test_same_message_as_the_exporters_encoder(case: str) -> None:
    emit, options = CASES[case]
    assert_same_message(finished(emit, **options))


class SpanOfItsOwn(ReadableSpan):
    """A processor may hand on a span of another class: it is read through its properties."""

    @property
    def name(self) -> str:
        return f"own {self._name}"


def of_its_own(span: ReadableSpan) -> SpanOfItsOwn:
    return SpanOfItsOwn(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span._attributes,  # the bounded containers, so the dropped counts carry over
        events=span._events,
        links=span._links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


@pytest.mark.parametrize("case", CASES)
def test_a_span_of_another_class_is_read_through_its_properties(case: str) -> None:
    emit, options = CASES[case]
    spans = tuple(of_its_own(span) for span in finished(emit, **options))
    assert all(span.name.startswith("own ") for span in spans)
    assert_same_message(spans)


def many(provider: TracerProvider) -> None:
    for _ in range(50):
        server_span(provider)
        several_scopes(provider)


def test_a_batch_of_many_spans_from_one_provider() -> None:
    spans = finished(many)
    assert_same_message(spans)
    assert len(ExportTraceServiceRequest.FromString(encode_spans(spans)).resource_spans) == 1


def test_pausing_between_chunks_changes_nothing_in_the_bytes() -> None:
    spans = finished(many)
    pauses: list[int] = []
    paused = encode_spans(spans, pause=lambda: pauses.append(1), every=16)
    assert paused == encode_spans(spans)
    assert len(pauses) == len(spans) // 16 > 1


def test_an_int_beyond_int64_is_dropped_as_the_exporters_drop_it() -> None:
    def huge(provider: TracerProvider) -> None:
        provider.get_tracer("t").start_span("huge", attributes={"big": 2**64, "ok": 1}).end()

    spans = finished(huge)
    assert_same_message(spans)
    decoded = ExportTraceServiceRequest.FromString(encode_spans(spans))
    keys = [kv.key for kv in decoded.resource_spans[0].scope_spans[0].spans[0].attributes]
    assert keys == ["ok"]


@pytest.fixture
def tiny_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(span_encoding, "_CACHE_LIMIT", 3)
    span_encoding._pair_cache.clear()
    yield
    span_encoding._pair_cache.clear()


@pytest.mark.usefixtures("tiny_cache")
def test_the_pair_cache_stays_bounded_and_answers_the_same_bytes() -> None:
    spans = finished(every_value_type)
    first = encode_spans(spans)
    assert len(span_encoding._pair_cache) <= 3
    assert encode_spans(spans) == first
    assert_same_message(spans)
