"""Upstream FastAPIInstrumentor with the Prometheus reader and an SDK tracer sampling every request,
exporting spans over OTLP/HTTP (endpoint from OTEL_EXPORTER_OTLP_ENDPOINT) in batches."""

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from bench.apps.upstream import instrumented_app

tracer_provider = TracerProvider()  # default sampler: parent-based, always on
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
app = instrumented_app(tracer_provider)
