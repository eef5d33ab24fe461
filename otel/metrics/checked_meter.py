"""A meter that tells the Prometheus bridge each instrument's Prometheus name before creating it,
so a name defined both through prometheus_client and through OpenTelemetry fails at start-up."""

from __future__ import annotations

import inspect
from typing import Any

from opentelemetry.metrics import Meter

from otel.metrics.bridge import PrometheusBridge
from otel.metrics.contract import CONTRACT
from otel.metrics.naming import MetricType, metric_name

_CONTRACT_NAMES = {spec.instrument: spec.prometheus_name for spec in CONTRACT}


def prometheus_name(instrument: str, unit: str, kind: MetricType) -> str:
    """The name an instrument gets in Prometheus: the contract's, or the naming rule's."""
    if instrument in _CONTRACT_NAMES:
        return _CONTRACT_NAMES[instrument]
    return metric_name(instrument, unit, kind)


class CheckedMeter(Meter):
    def __init__(self, meter: Meter, bridge: PrometheusBridge) -> None:
        super().__init__(meter.name, meter.version, meter.schema_url)
        self._meter = meter
        self._bridge = bridge

    def _create(self, method: str, kind: MetricType, args: Any, kwargs: Any) -> Any:
        create = getattr(self._meter, method)
        bound = inspect.signature(create).bind(*args, **kwargs).arguments
        name, unit = bound["name"], bound.get("unit", "")
        self._bridge.declare_instrument(prometheus_name(name, unit, kind), name)
        return create(*args, **kwargs)

    def create_counter(self, *args: Any, **kwargs: Any) -> Any:
        return self._create("create_counter", MetricType.MONOTONIC_COUNTER, args, kwargs)

    def create_observable_counter(self, *args: Any, **kwargs: Any) -> Any:
        return self._create("create_observable_counter", MetricType.MONOTONIC_COUNTER, args, kwargs)

    def create_up_down_counter(self, *args: Any, **kwargs: Any) -> Any:
        return self._create(
            "create_up_down_counter", MetricType.NON_MONOTONIC_COUNTER, args, kwargs
        )

    def create_observable_up_down_counter(self, *args: Any, **kwargs: Any) -> Any:
        return self._create(
            "create_observable_up_down_counter", MetricType.NON_MONOTONIC_COUNTER, args, kwargs
        )

    def create_histogram(self, *args: Any, **kwargs: Any) -> Any:
        return self._create("create_histogram", MetricType.HISTOGRAM, args, kwargs)

    def create_gauge(self, *args: Any, **kwargs: Any) -> Any:
        return self._create("create_gauge", MetricType.GAUGE, args, kwargs)

    def create_observable_gauge(self, *args: Any, **kwargs: Any) -> Any:
        return self._create("create_observable_gauge", MetricType.GAUGE, args, kwargs)
