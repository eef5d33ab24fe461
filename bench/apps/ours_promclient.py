"""Diagnostic, not in the default set: our middleware and route templates recording into
prometheus_client instead of our recorder. Its distance to `promclient` is the middleware's
share of the cost, its distance to `ours` the recorder's."""

from bench.apps.promclient import ContractMetrics, baseline_registry
from bench.apps.routes import add_metrics_route, build_app
from otel.middleware import TelemetryMiddleware
from otel.routes import RouteTemplates

registry = baseline_registry()
app = build_app()
app.add_middleware(
    TelemetryMiddleware, recorder=ContractMetrics(registry), routes=RouteTemplates(app)
)
add_metrics_route(app, registry)
