"""starlette_exporter with its defaults (route templates, unmatched paths filtered)."""

from starlette_exporter import PrometheusMiddleware, handle_metrics

from bench.apps.routes import build_app

app = build_app()
app.add_middleware(PrometheusMiddleware)
app.add_route("/metrics", handle_metrics)
