"""Ours configured by the OTEL_* variables the harness sets (the OTLP and tracing variants)."""

from bench.apps.routes import build_app
from otel import TelemetryConfig, setup_telemetry

app = build_app()
telemetry = setup_telemetry(app, TelemetryConfig.from_env())
