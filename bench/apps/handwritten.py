"""A minimal hand-written pure-ASGI prometheus_client middleware (the cheapest known way)."""

from bench.apps.promclient import ContractMetrics, PromClientMiddleware, baseline_registry
from bench.apps.routes import add_metrics_route, build_app

registry = baseline_registry()
app = build_app()
app.add_middleware(PromClientMiddleware, metrics=ContractMetrics(registry))
add_metrics_route(app, registry)
