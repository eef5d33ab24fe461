"""The SDK's OTLP span exporters (settings, transport, retries), sending our encoding.

The exporters' own encoder costs about five times `otel.traces.span_encoding` per span; everything
else about them (endpoint, headers, TLS, compression, timeouts, retries) is theirs.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from otel.traces.span_encoding import encode_spans


class OTLPHttpSpanExporter(HttpSpanExporter):
    """OTLP/HTTP: the request body is our encoding; the exporter's client sends it."""

    # Replaces the exporter's export(): its request-size limit and its own (opt-in) SDK metrics
    # are not applied; endpoint, headers, TLS, compression, timeout and retries are its client's.
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        result = self._client.export(encode_spans(spans))
        return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE


class OTLPGrpcSpanExporter(GrpcSpanExporter):
    """OTLP/gRPC: our encoding parsed (in C) into the request message the stub sends."""

    def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(
            encode_spans(data)
        )
        return request
