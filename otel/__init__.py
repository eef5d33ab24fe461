"""OpenTelemetry-native metrics for FastAPI under the club's documented Prometheus names.

from otel import setup_telemetry
telemetry = setup_telemetry(app)      # configured by the standard OTEL_* variables
...
telemetry.shutdown()
"""

from otel.config import TelemetryConfig, TelemetryConfigError
from otel.metrics.contract import CONTRACT, UNMATCHED_ENDPOINT, MetricSpec
from otel.setup import Telemetry, setup_telemetry

__all__ = [
    "CONTRACT",
    "UNMATCHED_ENDPOINT",
    "MetricSpec",
    "Telemetry",
    "TelemetryConfig",
    "TelemetryConfigError",
    "setup_telemetry",
]
