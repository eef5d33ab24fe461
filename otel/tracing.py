"""Traces: a tracer provider from the standard variables, child spans for the database and Redis.

OTEL_TRACES_EXPORTER is `otlp`, `console` or `none` (the default); the sampler comes from
OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, read by the SDK itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Tracer

from otel.config import otlp_protocol, otlp_timeout_seconds


def build_tracer_provider(
    exporters: Sequence[str],
    processors: Sequence[SpanProcessor],
    resource: Resource,
    env: Mapping[str, str],
) -> TracerProvider | None:
    """A provider when any exporter or processor is configured; None means tracing is off."""
    if not exporters and not processors:
        return None
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for name in exporters:
        provider.add_span_processor(BatchSpanProcessor(_span_exporter(name, env)))
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def _span_exporter(name: str, env: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    timeout = otlp_timeout_seconds(env, "TRACES")
    if otlp_protocol(env, "TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter(timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(timeout=timeout)


def instrument_sqlalchemy(engine: Any, tracer: Tracer) -> None:
    """Child spans for each query on `engine` (an Engine, or an AsyncEngine's sync_engine)."""
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    # The instrumentor is a process-wide singleton; an EngineTracer serves one engine only,
    # so two apps in one process keep their own providers. Pool usage is already measured.
    usage = NoOpMeter("otel.sqlalchemy").create_up_down_counter("db.client.connections.usage")
    EngineTracer(tracer, getattr(engine, "sync_engine", engine), usage)  # type: ignore[no-untyped-call]


def instrument_redis(client: Any, provider: TracerProvider) -> None:
    """Child spans for each command of this Redis client only."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor.instrument_client(client, tracer_provider=provider)
