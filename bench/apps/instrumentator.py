"""prometheus-fastapi-instrumentator with its defaults."""

from prometheus_fastapi_instrumentator import Instrumentator

from bench.apps.routes import build_app

app = build_app()
Instrumentator().instrument(app).expose(app)
