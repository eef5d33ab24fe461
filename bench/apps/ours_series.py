"""Ours with BENCH_SERIES request series recorded at start-up: the scrape under several workers.

Every worker records the same label sets, so the merged `/metrics` has the series of one worker
with every count multiplied by the number of workers.
"""

import os

from bench.apps.routes import build_app
from bench.scrape import label_sets, ours_recorder
from otel import TelemetryConfig, setup_telemetry

app = build_app()
telemetry = setup_telemetry(app, TelemetryConfig())
record = ours_recorder(app)
for label_set in label_sets(int(os.environ.get("BENCH_SERIES", "1000"))):
    record(*label_set)
