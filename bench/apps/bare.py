"""No instrumentation: the reference every ratio is taken against."""

from bench.apps.routes import build_app

app = build_app()
