"""The private parts of the OpenTelemetry packages that otel/ relies on, one place to see them.

Each has no public equivalent. The versions are pinned in constraints.txt; `make test-latest`
runs this file (and the rest) against the newest releases, so a release that moves one of these
fails here with its name rather than somewhere deep in an export path.
"""

from __future__ import annotations

import inspect

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.exporter.otlp.proto.grpc.exporter import OTLPExporterMixin
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.prometheus_remote_write import PrometheusRemoteWriteMetricsExporter
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    ParentBasedTraceIdRatio,
    StaticSampler,
)
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otel.traces.span_exporters import OTLPGrpcSpanExporter, OTLPHttpSpanExporter


def test_the_http_span_exporter_state_our_export_reads() -> None:
    exporter = OTLPHttpSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    assert exporter._shutdown is False
    assert isinstance(exporter._max_request_size, int)
    assert callable(exporter._client.export)
    assert callable(exporter._metrics.export_operation)
    exporter.shutdown()


def test_the_grpc_span_exporter_encodes_through_translate_data() -> None:
    assert "self._translate_data(data)" in inspect.getsource(OTLPExporterMixin._export)
    assert OTLPGrpcSpanExporter._translate_data is not OTLPExporterMixin._translate_data


def test_metric_exporters_keep_their_preferences_where_the_wrapper_reads_them() -> None:
    exporter = OTLPMetricExporter(endpoint="http://127.0.0.1:9/v1/metrics")
    assert isinstance(exporter._preferred_temporality, dict)
    assert isinstance(exporter._preferred_aggregation, dict)


def test_remote_write_translates_through_translate_data() -> None:
    export = inspect.getsource(PrometheusRemoteWriteMetricsExporter.export)
    assert "self._translate_data(" in export


def test_a_metric_reader_receives_through_receive_metrics() -> None:
    assert "_receive_metrics" in MetricReader.__abstractmethods__


def test_the_sampler_state_root_decision_and_child_spans_read() -> None:
    sampler = ParentBasedTraceIdRatio(0.25)
    assert sampler._root.bound == sampler._root.get_bound_for_rate(0.25)
    assert sampler._local_parent_not_sampled is ALWAYS_OFF
    assert sampler._remote_parent_not_sampled is ALWAYS_OFF
    assert StaticSampler(Decision.DROP)._decision is Decision.DROP


def test_the_composite_propagator_keeps_its_list_where_extract_parent_reads_it() -> None:
    inner = [TraceContextTextMapPropagator(), W3CBaggagePropagator()]
    assert CompositePropagator(inner)._propagators is inner


def test_a_readable_span_keeps_what_its_properties_answer_where_the_encoder_reads_it() -> None:
    attributes = BoundedAttributes(2, {"a": 1, "b": 2, "c": 3})
    events, links = BoundedList.from_seq(1, [Event("e")]), BoundedList.from_seq(1, [])
    span = ReadableSpan(
        "name",
        context=SpanContext(1, 2, False),
        parent=SpanContext(1, 3, True),
        resource=Resource({}),
        attributes=attributes,
        events=events,
        links=links,
        kind=SpanKind.SERVER,
        status=Status(StatusCode.ERROR),
        start_time=10,
        end_time=20,
        instrumentation_scope=InstrumentationScope("scope"),
    )
    for name in ("name", "context", "parent", "resource", "kind", "status"):
        assert getattr(span, f"_{name}") is getattr(span, name), name
    for name in ("start_time", "end_time", "instrumentation_scope"):
        assert getattr(span, f"_{name}") is getattr(span, name), name
    assert span._attributes is attributes and span.dropped_attributes == attributes.dropped == 1
    assert span._events is events and span._links is links


def test_the_sqlalchemy_engine_tracer_registers_its_statement_hooks_through_one_method() -> None:
    """`EngineSpans` keeps the hooks EngineTracer's constructor registers (by event name) and
    runs them from the dialect's execute events; handle_error reads two ExceptionContext fields."""
    import sqlalchemy
    from opentelemetry.instrumentation.sqlalchemy import engine as upstream
    from opentelemetry.metrics import NoOpMeter
    from opentelemetry.trace import NoOpTracer

    registered: list[str] = []

    class Recording(upstream.EngineTracer):  # type: ignore[misc]
        def _register_event_listener(self, target, identifier, func, *args, **kw):  # type: ignore[no-untyped-def]
            registered.append(identifier)

    usage = NoOpMeter("m").create_up_down_counter("u")
    Recording(NoOpTracer(), sqlalchemy.create_engine("sqlite://"), usage)
    assert set(registered) >= {"before_cursor_execute", "after_cursor_execute", "handle_error"}
    handle_error = inspect.getsource(upstream._handle_error)
    assert "context.execution_context" in handle_error
    assert "context.original_exception" in handle_error


def test_an_sdk_tracer_keeps_what_the_light_tracer_reads() -> None:
    """`LightTracer` starts spans for the SDK tracer's own sampler, ids, resource, processors,
    limits and scope, and leaves a tracer the provider's configurator disabled to the SDK."""
    from opentelemetry.sdk.trace import SpanLimits, Tracer, TracerProvider

    provider = TracerProvider()
    tracer = provider.get_tracer("scope", "1.0", "https://example.com/schema")
    assert type(tracer) is Tracer
    assert tracer.sampler is provider.sampler and tracer.id_generator is provider.id_generator
    assert tracer.resource is provider.resource
    assert tracer.span_processor is provider._active_span_processor
    assert isinstance(tracer._span_limits, SpanLimits)
    assert tracer._instrumentation_scope == InstrumentationScope(
        "scope", "1.0", "https://example.com/schema"
    )
    assert tracer._is_enabled() is True
