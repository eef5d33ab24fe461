"""`otel.traces.propagation.extract_parent` against `propagate.extract`: the oracle is the API's
own extraction, over a plain dict of the same headers, for each propagator setting and header set
(the W3C ones take the shortcut when their headers are absent; the others never do)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otel.traces.propagation import extract_parent

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class CountingTraceContext(TraceContextTextMapPropagator):
    """Someone's own propagator: a subclass may read more than its parent, so it is always asked."""

    calls = 0

    def extract(self, *args: Any, **kwargs: Any) -> Context:
        CountingTraceContext.calls += 1
        return super().extract(*args, **kwargs)


SETTINGS: dict[str, TextMapPropagator] = {
    "tracecontext,baggage": CompositePropagator(
        [TraceContextTextMapPropagator(), W3CBaggagePropagator()]
    ),
    "baggage,tracecontext": CompositePropagator(
        [W3CBaggagePropagator(), TraceContextTextMapPropagator()]
    ),
    "tracecontext alone": TraceContextTextMapPropagator(),
    "baggage alone": W3CBaggagePropagator(),
    "none": CompositePropagator([]),
    "own subclass": CompositePropagator([CountingTraceContext()]),
}

HEADER_SETS: dict[str, list[tuple[bytes, bytes]]] = {
    "no headers": [],
    "host and user agent": [(b"host", b"memo:8000"), (b"user-agent", b"wrk")],
    "traceparent": [(b"host", b"memo"), (b"traceparent", TRACEPARENT.encode())],
    "traceparent, upper case": [(b"Traceparent", TRACEPARENT.encode())],
    "bad traceparent": [(b"traceparent", b"00-zz-01")],
    "tracestate alone": [(b"tracestate", b"vendor=1")],
    "baggage": [(b"baggage", b"user=alice,tier=gold")],
    "both": [(b"traceparent", TRACEPARENT.encode()), (b"baggage", b"user=bob")],
}


@pytest.fixture
def textmap() -> Iterator[None]:
    saved = propagate.get_global_textmap()
    yield
    propagate.set_global_textmap(saved)


@pytest.fixture(params=[False, True], ids=["no current context", "current context with baggage"])
def current(request: pytest.FixtureRequest) -> Iterator[None]:
    """Under a current context, a propagator that starts from it returns it, not an empty one."""
    token = otel_context.attach(baggage.set_baggage("from", "current")) if request.param else None
    yield
    if token is not None:
        otel_context.detach(token)


def comparable(context: Context | None) -> dict[str, Any] | None:
    """A context's entries, spans by their span context (spans have no equality of their own)."""
    if context is None:
        return None
    return {
        key: value.get_span_context() if isinstance(value, trace.Span) else value
        for key, value in context.items()
    }


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("headers", HEADER_SETS)
def test_the_parent_is_what_propagate_extract_returns(
    setting: str, headers: str, textmap: None, current: None
) -> None:
    propagate.set_global_textmap(SETTINGS[setting])
    raw = HEADER_SETS[headers]
    expected = propagate.extract({key.decode().lower(): value.decode() for key, value in raw})
    assert comparable(extract_parent(raw)) == comparable(expected)


def test_a_propagator_of_another_kind_is_always_asked(textmap: None) -> None:
    propagate.set_global_textmap(SETTINGS["own subclass"])
    before = CountingTraceContext.calls
    extract_parent([(b"host", b"memo")])
    assert CountingTraceContext.calls == before + 1


def test_a_new_global_textmap_is_followed(textmap: None) -> None:
    raw = [(b"traceparent", TRACEPARENT.encode())]
    propagate.set_global_textmap(SETTINGS["baggage alone"])
    assert trace.get_current_span(extract_parent(raw)) is trace.INVALID_SPAN
    propagate.set_global_textmap(SETTINGS["tracecontext alone"])
    parent = trace.get_current_span(extract_parent(raw)).get_span_context()
    assert parent.trace_id == int(TRACEPARENT.split("-")[1], 16)
