"""The child spans' tracers: an SDK tracer whose recording spans are the light `ServerSpan`.

The SQL and Redis instrumentations start their spans through the tracer they are given. Under
the SDK's tracer each of those spans pays what the request's span would (locks, attribute
validation on every write, a copy at the end: `python -m bench.span_cost`). `LightTracer` starts
them the way `ServerTracer` starts the request's span, for the same provider's sampler, ids,
resource, limits and processors and under the instrumentation's own scope. What the light span
does not take (links, a start time, a span that must not record an escaping exception) and a
tracer the provider has disabled go to the SDK's tracer, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util._decorator import _agnosticcontextmanager

from otel.traces.server_span import ServerTracer


class LightTracer(trace.Tracer):
    """One SDK tracer's spans, started light where they can be."""

    def __init__(self, sdk: SdkTracer) -> None:
        self._sdk = sdk
        self._light = ServerTracer(
            sampler=sdk.sampler,
            id_generator=sdk.id_generator,
            resource=lambda: sdk.resource,
            processor=sdk.span_processor,
            limits=sdk._span_limits,
            scope=sdk._instrumentation_scope,
        )

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        light = not links and start_time is None and record_exception and set_status_on_exception
        if light and self._sdk._is_enabled():
            return self._light.start_span(name, context, kind, attributes)
        return self._sdk.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        # As the SDK's tracer does it.
        span = self.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


def light_tracer(tracer: trace.Tracer) -> trace.Tracer:
    """`tracer` with light spans when it is the SDK's own; any other tracer as it is."""
    return LightTracer(tracer) if type(tracer) is SdkTracer else tracer


class LightTracerProvider(trace.TracerProvider):
    """Gives an instrumentation (RedisInstrumentor) the provider's tracers, with light spans."""

    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> trace.Tracer:
        return light_tracer(
            self._provider.get_tracer(
                instrumenting_module_name, instrumenting_library_version, schema_url, attributes
            )
        )
