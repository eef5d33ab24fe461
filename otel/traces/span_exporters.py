"""The SDK's OTLP span exporters (settings, transport, retries), sending our encoding.

The exporters' own encoder costs about five times `otel.traces.span_encoding` per span; everything
else about them (endpoint, headers, TLS, compression, timeouts, retries) is theirs.

Encoding a full batch (512 spans, about 3.5 ms) holds the GIL: CPython hands it to a waiting
thread only after its switch interval (5 ms), so every export stalled the requests' event loop
for that long, in the latency tail. The encoder pauses after every 64 spans instead (about
0.5 ms of work), sleeping briefly so that the requests' thread takes the GIL in between.
"""

from __future__ import annotations

import logging
import time
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

log = logging.getLogger(__name__)

PAUSE_SECONDS = 0.0001  # a real sleep: sleep(0) may take the GIL straight back


def _let_requests_run() -> None:
    time.sleep(PAUSE_SECONDS)


class OTLPHttpSpanExporter(HttpSpanExporter):
    """OTLP/HTTP: the request body is our encoding; the exporter's client sends it.

    export() is the SDK's with the encoder swapped: a batch that fails to encode or exceeds
    `max_request_size` is dropped as FAILURE, the exporter's own (opt-in) metrics record each
    export. It reads the exporter's private `_shutdown`, `_metrics`, `_max_request_size` and
    `_client`: the versions are pinned (constraints.txt) and tests/test_sdk_internals.py names
    each attribute, so an upgrade that moves one fails there first.
    """

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            log.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        with self._metrics.export_operation(len(spans)) as result:
            try:
                body = encode_spans(spans, pause=_let_requests_run)
            except Exception as error:
                log.error("Failed to encode span batch: %s", error)
                result.error = error
                return SpanExportResult.FAILURE
            if 0 < self._max_request_size < len(body):
                log.warning(
                    "Dropping span batch: serialized size %d bytes exceeds max_request_size %d",
                    len(body),
                    self._max_request_size,
                )
                result.error = ValueError("span batch exceeds max_request_size")
                return SpanExportResult.FAILURE
            sent = self._client.export(body)
            if not sent.success:
                result.error = sent.error
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


class OTLPGrpcSpanExporter(GrpcSpanExporter):
    """OTLP/gRPC: our encoding parsed (in C) into the request message the stub sends."""

    def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(
            encode_spans(data, pause=_let_requests_run)
        )
        return request
