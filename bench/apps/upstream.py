"""Upstream FastAPIInstrumentor with the Prometheus reader, as its documentation shows it."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY

from bench.apps.routes import add_metrics_route, build_app


def instrumented_app(tracer_provider: TracerProvider | None = None) -> FastAPI:
    """Without a tracer provider the instrumentor uses the global no-op one."""
    app = build_app()
    add_metrics_route(app, REGISTRY)
    FastAPIInstrumentor.instrument_app(
        app,
        meter_provider=MeterProvider([PrometheusMetricReader()]),
        tracer_provider=tracer_provider,
    )
    return app


app = instrumented_app()
