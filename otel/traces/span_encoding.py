"""Finished spans as an OTLP `ExportTraceServiceRequest`, written straight to protobuf bytes.

The exporters' own encoder builds a protobuf object for every span, attribute and value (54 us
per server span, `python -m bench.span_cost` on 2026-12-03); writing the wire format directly
takes 8.6 us, and the encoded key/value pairs that repeat from span to span (method, scheme,
route, status...) are cached.
`tests/test_span_encoding.py` checks that the result decodes to the same message as the
exporters' encoder for spans with events, links, arrays, trace state and limits. Field numbers
and wire types: `otel/traces/otlp_wire.py` (`LEN[proto.Span.NAME]` is Span's field 5, a LEN).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceState

from otel.traces import otlp_wire as proto
from otel.traces.otlp_wire import I32, I64, LEN, VARINT, varint

log = logging.getLogger(__name__)

_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack
_FIXED32 = struct.Struct("<I").pack
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# SpanFlags: the flags field says whether the parent was remote.
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200

_CACHE_LIMIT = 4096  # encoded pairs (and names) kept; cleared when full, so never unbounded
_CACHEABLE = frozenset((str, int, bool))  # not float: 0.0 and -0.0 are one dict key
_pair_cache: dict[tuple[str, type, Any], bytes] = {}
_name_cache: dict[str, bytes] = {}

_IDS = struct.Struct(">2sQQ2sQ").pack  # trace_id (16 bytes) and span_id (8), big-endian
_PARENT = struct.Struct(">2sQ").pack
_TIMES = struct.Struct("<1sQ1sQ").pack  # start and end, fixed64
_LOW64 = 0xFFFF_FFFF_FFFF_FFFF


def encode_spans(
    spans: Iterable[ReadableSpan], pause: Callable[[], None] | None = None, every: int = 64
) -> bytes:
    """The serialized ExportTraceServiceRequest for `spans`, grouped by resource and scope.

    `pause`, if given, is called after every `every` spans: the exporter thread uses it to let
    the requests' thread run (see `otel.traces.span_exporters`).
    """
    groups: dict[int, tuple[Resource, dict[int, tuple[InstrumentationScope | None, list[bytes]]]]]
    groups = {}
    for index, span in enumerate(spans, 1):
        if pause is not None and index % every == 0:
            pause()
        if span.__class__ is ReadableSpan:  # see _fields
            resource, scope = span._resource, span._instrumentation_scope
        else:
            resource, scope = span.resource, span.instrumentation_scope
        scopes = groups.get(id(resource))
        if scopes is None:
            scopes = groups[id(resource)] = (resource, {})
        entry = scopes[1].get(id(scope))
        if entry is None:
            entry = scopes[1][id(scope)] = (scope, [])
        entry[1].append(_field(proto.ScopeSpans.SPANS, _span(span)))
    out = []
    for resource, by_scope in groups.values():
        resource_body = _pairs(proto.Resource.ATTRIBUTES, resource.attributes)
        body = [_field(proto.ResourceSpans.RESOURCE, resource_body)]
        for scope, encoded in by_scope.values():
            scope_spans = _scope_header(scope) + b"".join(encoded) + _schema(scope)
            body.append(_field(proto.ResourceSpans.SCOPE_SPANS, scope_spans))
        if resource.schema_url:
            body.append(_string(proto.ResourceSpans.SCHEMA_URL, resource.schema_url))
        out.append(_field(proto.ExportTraceServiceRequest.RESOURCE_SPANS, b"".join(body)))
    return b"".join(out)


def _span(span: ReadableSpan) -> bytes:
    if span.__class__ is ReadableSpan:  # what the SDK's spans and ours hand the processors
        return _encode(*_fields(span))
    return _encode(
        span.context,
        span.parent,
        span.name,
        span.kind,
        span.start_time,
        span.end_time,
        span.attributes,
        span.dropped_attributes,
        span.events,
        span.dropped_events,
        span.links,
        span.dropped_links,
        span.status,
    )


def _fields(span: ReadableSpan) -> tuple[Any, ...]:
    """What `_encode` takes, read from the fields behind a `ReadableSpan`'s properties.

    Through the properties it costs about 15k instructions per span: thirteen calls, copies of
    the attributes, events and links, and three abstract-class `isinstance` checks. The field
    names are pinned in tests/test_sdk_internals.py.
    """
    attributes, events, links = span._attributes, span._events, span._links
    return (
        span._context,
        span._parent,
        span._name,
        span._kind,
        span._start_time,
        span._end_time,
        attributes,
        attributes.dropped if attributes.__class__ is BoundedAttributes else 0,
        events,
        events.dropped if events.__class__ is BoundedList else 0,
        links,
        links.dropped if links.__class__ is BoundedList else 0,
        span._status,
    )


def _encode(
    context: SpanContext | None,
    parent: SpanContext | None,
    name: str,
    kind: SpanKind,
    start_time: int | None,
    end_time: int | None,
    attributes: Mapping[str, Any] | None,
    dropped_attributes: int,
    events: Iterable[Event],
    dropped_events: int,
    links: Iterable[Link],
    dropped_links: int,
    status: Status,
) -> bytes:
    assert context is not None, "a finished span has a context"
    trace_id = context.trace_id
    parts = [_IDS(_TRACE_ID, trace_id >> 64, trace_id & _LOW64, _SPAN_ID, context.span_id)]
    if context.trace_state:
        parts.append(_string(proto.Span.TRACE_STATE, _trace_state(context.trace_state)))
    if parent is not None:
        parts.append(_PARENT(_PARENT_SPAN_ID, parent.span_id))
    parts.append(_name(name))
    parts.append(_KINDS[kind])
    parts.append(_TIMES(_START, start_time or 0, _END, end_time or 0))
    parts.append(_pairs(proto.Span.ATTRIBUTES, attributes))
    if dropped_attributes:
        parts.append(VARINT[proto.Span.DROPPED_ATTRIBUTES_COUNT] + varint(dropped_attributes))
    for event in events:
        parts.append(_field(proto.Span.EVENTS, _event(event)))
    if dropped_events:
        parts.append(VARINT[proto.Span.DROPPED_EVENTS_COUNT] + varint(dropped_events))
    for link in links:
        parts.append(_field(proto.Span.LINKS, _link(link)))
    if dropped_links:
        parts.append(VARINT[proto.Span.DROPPED_LINKS_COUNT] + varint(dropped_links))
    if status.description:
        parts.append(
            _field(proto.Span.STATUS, _status(status.status_code.value, status.description))
        )
    else:
        parts.append(_STATUSES[status.status_code])
    parts.append(_REMOTE_PARENT if parent is not None and parent.is_remote else _LOCAL_PARENT)
    return b"".join(parts)


def _name(name: str) -> bytes:
    encoded = _name_cache.get(name)
    if encoded is None:
        if len(_name_cache) >= _CACHE_LIMIT:
            _name_cache.clear()
        encoded = _name_cache[name] = _string(proto.Span.NAME, name)
    return encoded


def _event(event: Event) -> bytes:
    body = I64[proto.Event.TIME_UNIX_NANO] + _FIXED64(event.timestamp)
    body += _string(proto.Event.NAME, event.name)
    body += _pairs(proto.Event.ATTRIBUTES, event.attributes)
    if event.dropped_attributes:
        body += VARINT[proto.Event.DROPPED_ATTRIBUTES_COUNT] + varint(event.dropped_attributes)
    return body


def _link(link: Link) -> bytes:
    context = link.context
    body = (
        _field(proto.Link.TRACE_ID, context.trace_id.to_bytes(16, "big"))
        + _field(proto.Link.SPAN_ID, context.span_id.to_bytes(8, "big"))
        + _pairs(proto.Link.ATTRIBUTES, link.attributes)
    )
    if link.dropped_attributes:
        body += VARINT[proto.Link.DROPPED_ATTRIBUTES_COUNT] + varint(link.dropped_attributes)
    return body + I32[proto.Link.FLAGS] + _FIXED32(_flags(context))


def _status(code: int, description: str | None) -> bytes:
    body = _string(proto.Status.MESSAGE, description) if description else b""
    return body + (VARINT[proto.Status.CODE] + varint(code) if code else b"")


def _flags(parent: SpanContext | None) -> int:
    return _HAS_IS_REMOTE | (_IS_REMOTE if parent is not None and parent.is_remote else 0)


def _trace_state(trace_state: TraceState) -> str:
    return ",".join(f"{key}={value}" for key, value in trace_state.items())


def _scope_header(scope: InstrumentationScope | None) -> bytes:
    if scope is None:
        return _field(proto.ScopeSpans.SCOPE, b"")  # the exporters send an empty scope, not none
    body = _string(proto.InstrumentationScope.NAME, scope.name) if scope.name else b""
    if scope.version:
        body += _string(proto.InstrumentationScope.VERSION, scope.version)
    body += _pairs(proto.InstrumentationScope.ATTRIBUTES, scope.attributes)
    return _field(proto.ScopeSpans.SCOPE, body)


def _schema(scope: InstrumentationScope | None) -> bytes:
    if scope is None or not scope.schema_url:
        return b""
    return _string(proto.ScopeSpans.SCHEMA_URL, scope.schema_url)


def _pairs(field_number: int, attributes: Mapping[str, Any] | None) -> bytes:
    """Each attribute as a KeyValue in the repeated field `field_number`."""
    if not attributes:
        return b""
    tag, cached = LEN[field_number], _pair_cache.get
    encoded: list[bytes] = []
    for key, value in attributes.items():
        hit = cached((key, value.__class__, value)) if value.__class__ in _CACHEABLE else None
        if hit is not None:
            encoded += (tag, hit)
            continue
        try:
            encoded.append(_pair(field_number, key, value))
        except (TypeError, ValueError) as error:  # as the exporters do: drop it, say so
            log.error("cannot encode attribute %s: %s", key, error)
    return b"".join(encoded)


def _pair(field_number: int, key: str, value: Any) -> bytes:
    cache_key = (key, value.__class__, value) if value.__class__ in _CACHEABLE else None
    if cache_key is not None:
        hit = _pair_cache.get(cache_key)
        if hit is not None:
            return LEN[field_number] + hit
    body = _string(proto.KeyValue.KEY, key) + _field(proto.KeyValue.VALUE, _any_value(value))
    encoded = varint(len(body)) + body
    if cache_key is not None:
        if len(_pair_cache) >= _CACHE_LIMIT:
            _pair_cache.clear()
        _pair_cache[cache_key] = encoded
    return LEN[field_number] + encoded


def _any_value(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bool):
        return VARINT[proto.AnyValue.BOOL_VALUE] + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return _string(proto.AnyValue.STRING_VALUE, value)
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"{value} does not fit in an int64")
        return VARINT[proto.AnyValue.INT_VALUE] + varint(value & _LOW64)  # two's complement
    if isinstance(value, float):
        return I64[proto.AnyValue.DOUBLE_VALUE] + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(proto.AnyValue.BYTES_VALUE, value)
    if isinstance(value, Sequence):
        items = (_field(proto.ArrayValue.VALUES, _any_value(item)) for item in value)
        return _field(proto.AnyValue.ARRAY_VALUE, b"".join(items))
    if isinstance(value, Mapping):
        pairs = (_pair(proto.KeyValueList.VALUES, str(k), v) for k, v in value.items())
        return _field(proto.AnyValue.KVLIST_VALUE, b"".join(pairs))
    raise TypeError(f"unsupported attribute type {type(value).__name__}")


def _string(field_number: int, value: str) -> bytes:
    return _field(field_number, value.encode("utf-8"))


def _field(field_number: int, payload: bytes) -> bytes:
    """A length-delimited (LEN) field: a message, a string or bytes."""
    return LEN[field_number] + varint(len(payload)) + payload


# Tag and length of the ids, packed with them by _IDS and _PARENT.
_TRACE_ID = LEN[proto.Span.TRACE_ID] + varint(16)
_SPAN_ID = LEN[proto.Span.SPAN_ID] + varint(8)
_PARENT_SPAN_ID = LEN[proto.Span.PARENT_SPAN_ID] + varint(8)
_START, _END = I64[proto.Span.START_TIME_UNIX_NANO], I64[proto.Span.END_TIME_UNIX_NANO]
# The API's span kinds start at 0, OTLP's at 1.
_KINDS = {kind: VARINT[proto.Span.KIND] + varint(kind.value + 1) for kind in SpanKind}
_STATUSES = {code: _field(proto.Span.STATUS, _status(code.value, None)) for code in StatusCode}
_LOCAL_PARENT = I32[proto.Span.FLAGS] + _FIXED32(_flags(None))
_REMOTE_PARENT = I32[proto.Span.FLAGS] + _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE)
