"""Traces: a tracer provider from the standard variables, its server and child span makers.

OTEL_TRACES_EXPORTER is `otlp`, `console` or `none` (the default); the sampler comes from
OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, read by the SDK itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    SpanLimits,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel.config import otlp_protocol, otlp_timeout_seconds
from otel.traces.child_spans import ChildSpans
from otel.traces.server_span import ServerTracer


@dataclass(frozen=True)
class Tracing:
    provider: TracerProvider
    server_tracer: ServerTracer  # the middleware's server spans, into the provider's pipeline
    child_spans: ChildSpans  # SQL and Redis spans under them


def build_tracing(
    exporters: Sequence[str],
    processors: Sequence[SpanProcessor],
    resource: Resource,
    env: Mapping[str, str],
    scope_name: str,
) -> Tracing | None:
    """A provider when any exporter or processor is configured; None means tracing is off."""
    if not exporters and not processors:
        return None
    pipeline = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
    limits = SpanLimits()
    provider = TracerProvider(
        resource=resource,
        shutdown_on_exit=False,
        active_span_processor=pipeline,
        span_limits=limits,
    )
    for name in exporters:
        provider.add_span_processor(BatchSpanProcessor(_span_exporter(name, env)))
    for processor in processors:
        provider.add_span_processor(processor)
    server_tracer = ServerTracer(
        sampler=provider.sampler,
        id_generator=provider.id_generator,
        resource=lambda: provider.resource,
        processor=pipeline,
        limits=limits,
        scope=InstrumentationScope(scope_name, ""),  # as provider.get_tracer(scope_name) has it
    )
    return Tracing(provider, server_tracer, ChildSpans(provider))


def _span_exporter(name: str, env: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    from otel.traces import span_exporters  # imports grpc: only when OTLP tracing is on

    timeout = otlp_timeout_seconds(env, "TRACES")
    if otlp_protocol(env, "TRACES") == "grpc":
        return span_exporters.OTLPGrpcSpanExporter(timeout=timeout)
    return span_exporters.OTLPHttpSpanExporter(timeout=timeout)
