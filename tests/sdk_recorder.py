"""Records requests into OpenTelemetry SDK instruments named by the contract."""

from __future__ import annotations

from opentelemetry.metrics import Meter

from otel.metrics.contract import REQUEST_DURATION, REQUESTS

_STATUS_TEXT = {code: str(code) for code in range(100, 600)}


class SdkRequestRecorder:
    def __init__(self, meter: Meter) -> None:
        self._requests = meter.create_counter(
            REQUESTS.instrument, unit=REQUESTS.unit, description=REQUESTS.description
        )
        self._duration = meter.create_histogram(
            REQUEST_DURATION.instrument,
            unit=REQUEST_DURATION.unit,
            description=REQUEST_DURATION.description,
            explicit_bucket_boundaries_advisory=list(REQUEST_DURATION.buckets or ()),
        )

    def record(self, method: str, endpoint: str, status_code: int, seconds: float) -> None:
        status = _STATUS_TEXT.get(status_code) or str(status_code)
        self._requests.add(1, {"method": method, "endpoint": endpoint, "status_code": status})
        self._duration.record(seconds, {"method": method, "endpoint": endpoint})
