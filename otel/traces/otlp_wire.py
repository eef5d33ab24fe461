"""The OTLP trace messages' field numbers, and protobuf tags by wire type.

A tag is written as `<wire type>[proto.<Message>.<FIELD>]`: `LEN[proto.Span.NAME]` is field 5 of
`Span`, length-delimited. The wire types are the protobuf encoding's: VARINT, I64 (8 bytes, little
endian), LEN (a varint length, then the bytes) and I32 (4 bytes). `tests/test_span_encoding.py`
checks every number below against opentelemetry-proto's descriptors.
"""

from __future__ import annotations


class ExportTraceServiceRequest:
    """opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"""

    RESOURCE_SPANS = 1


class ResourceSpans:
    """opentelemetry.proto.trace.v1.ResourceSpans"""

    RESOURCE = 1
    SCOPE_SPANS = 2
    SCHEMA_URL = 3


class Resource:
    """opentelemetry.proto.resource.v1.Resource"""

    ATTRIBUTES = 1


class ScopeSpans:
    """opentelemetry.proto.trace.v1.ScopeSpans"""

    SCOPE = 1
    SPANS = 2
    SCHEMA_URL = 3


class InstrumentationScope:
    """opentelemetry.proto.common.v1.InstrumentationScope"""

    NAME = 1
    VERSION = 2
    ATTRIBUTES = 3


class Span:
    """opentelemetry.proto.trace.v1.Span"""

    TRACE_ID = 1
    SPAN_ID = 2
    TRACE_STATE = 3
    PARENT_SPAN_ID = 4
    NAME = 5
    KIND = 6
    START_TIME_UNIX_NANO = 7
    END_TIME_UNIX_NANO = 8
    ATTRIBUTES = 9
    DROPPED_ATTRIBUTES_COUNT = 10
    EVENTS = 11
    DROPPED_EVENTS_COUNT = 12
    LINKS = 13
    DROPPED_LINKS_COUNT = 14
    STATUS = 15
    FLAGS = 16


class Event:
    """opentelemetry.proto.trace.v1.Span.Event"""

    TIME_UNIX_NANO = 1
    NAME = 2
    ATTRIBUTES = 3
    DROPPED_ATTRIBUTES_COUNT = 4


class Link:
    """opentelemetry.proto.trace.v1.Span.Link"""

    TRACE_ID = 1
    SPAN_ID = 2
    ATTRIBUTES = 4
    DROPPED_ATTRIBUTES_COUNT = 5
    FLAGS = 6


class Status:
    """opentelemetry.proto.trace.v1.Status"""

    MESSAGE = 2
    CODE = 3


class KeyValue:
    """opentelemetry.proto.common.v1.KeyValue"""

    KEY = 1
    VALUE = 2


class AnyValue:
    """opentelemetry.proto.common.v1.AnyValue"""

    STRING_VALUE = 1
    BOOL_VALUE = 2
    INT_VALUE = 3
    DOUBLE_VALUE = 4
    ARRAY_VALUE = 5
    KVLIST_VALUE = 6
    BYTES_VALUE = 7


class ArrayValue:
    """opentelemetry.proto.common.v1.ArrayValue"""

    VALUES = 1


class KeyValueList:
    """opentelemetry.proto.common.v1.KeyValueList"""

    VALUES = 1


MESSAGES = (
    ExportTraceServiceRequest,
    ResourceSpans,
    Resource,
    ScopeSpans,
    InstrumentationScope,
    Span,
    Event,
    Link,
    Status,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
)


def varint(value: int) -> bytes:
    """A non-negative int as a protobuf varint: 7 bits a byte, low bits first."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tags(wire_type: int) -> tuple[bytes, ...]:
    """The tag of each field number up to the largest used here, for one wire type."""
    return tuple(varint(number << 3 | wire_type) for number in range(Span.FLAGS + 1))


VARINT = _tags(0)
I64 = _tags(1)
LEN = _tags(2)
I32 = _tags(5)
