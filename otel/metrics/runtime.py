"""`python_gc_*`, `python_info` and `process_*` recorded through the SDK, for every export path.

prometheus_client's collectors know how to read these on every platform; their values are
observed by SDK instruments named like their families, so the in-process exporter, the collector
and remote write all end with the names prometheus_client itself would write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from time import monotonic

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.metrics_core import Metric as MetricFamily

# One collection reads /proc once for all the families, not once for each.
_FRESH_FOR_SECONDS = 0.1


class _RuntimeFamilies:
    def __init__(self) -> None:
        registry = CollectorRegistry(auto_describe=False)
        self._collectors = [
            GCCollector(registry=registry),
            PlatformCollector(registry=registry),
            ProcessCollector(registry=registry),
        ]
        self._read_at = -1.0
        self._families: dict[str, MetricFamily] = {}

    def current(self) -> dict[str, MetricFamily]:
        if monotonic() - self._read_at > _FRESH_FOR_SECONDS:
            self._families = {f.name: f for c in self._collectors for f in c.collect()}
            self._read_at = monotonic()
        return self._families


def observe_runtime(meter: Meter) -> None:
    families = _RuntimeFamilies()
    for name, family in families.current().items():
        callback = _observer(families, name)
        if family.type == "counter":
            meter.create_observable_counter(
                name, callbacks=[callback], description=family.documentation
            )
        else:
            meter.create_observable_gauge(
                name, callbacks=[callback], description=family.documentation
            )


def _observer(
    families: _RuntimeFamilies, name: str
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        family = families.current().get(name)
        if family is None:
            return []
        return [Observation(sample.value, dict(sample.labels)) for sample in family.samples]

    return observe
