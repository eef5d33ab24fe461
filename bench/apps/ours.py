"""Ours, metrics only, the default in-process path (`/metrics` from the app)."""

from bench.apps.routes import build_app
from otel import TelemetryConfig, setup_telemetry

app = build_app()
telemetry = setup_telemetry(app, TelemetryConfig())
