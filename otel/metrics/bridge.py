"""The Prometheus bridge: metrics registered with prometheus_client on every export path.

At collection time (never on the request path) the bridge collects the app's prometheus_client
registries, the default `REGISTRY` unless others are given. `/metrics` renders the collected
families as they are, so they read exactly as prometheus_client itself writes them; the push
exporters get them as OpenTelemetry metrics by the table in `otel/metrics/prometheus_to_otlp.py`.

The runtime series (`python_gc_*`, `python_info`, `process_*`) are one more source:
prometheus_client's own collectors, used for every family no bridged registry already has (the
default `REGISTRY` has them too).

A name is served by one side only: a bridged family whose names clash with an OpenTelemetry
instrument's Prometheus name is a `TelemetryConfigError` when the second of the two is declared.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from time import time_ns

from opentelemetry.sdk.metrics.export import Metric
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.metrics_core import Metric as MetricFamily

from otel.config import TelemetryConfigError
from otel.metrics.prometheus_to_otlp import Times, otlp_metric

log = logging.getLogger(__name__)


def runtime_registry() -> CollectorRegistry:
    """A registry with the collectors of `python_gc_*`, `python_info` and `process_*`."""
    registry = CollectorRegistry(auto_describe=False)
    GCCollector(registry=registry)
    PlatformCollector(registry=registry)
    ProcessCollector(registry=registry)
    return registry


# The suffixes prometheus_client gives a family's samples, by type, the name users write first.
_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created", ""),
    "info": ("_info", ""),
    "histogram": ("", "_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gaugehistogram": ("", "_bucket", "_gcount", "_gsum"),
}


def exposed_names(family: MetricFamily) -> tuple[str, ...]:
    """Every name a family takes in Prometheus: its samples' (`_total`, ...) and its own."""
    return tuple(family.name + suffix for suffix in _SAMPLE_SUFFIXES.get(family.type, ("",)))


class PrometheusBridge:
    def __init__(self, registries: Sequence[CollectorRegistry]) -> None:
        self._registries = list({id(r): r for r in registries}.values())
        self._runtime = runtime_registry()
        self._start_ns = time_ns()
        self._lock = threading.Lock()
        self._otel_names: dict[str, str] = {}  # Prometheus name -> the instrument declaring it
        self._reported: set[str] = set()
        self._check_registries()

    def families(self, served: Iterable[MetricFamily] = ()) -> list[MetricFamily]:
        """The bridged families, as prometheus_client collects them, runtime ones last.

        `served`: the families the SDK's reader writes beside them; a bridged family that
        clashes with one (an instrument the bridge was not told of) is left out.
        """
        taken = dict(self._otel_names)
        for family in served:
            taken.update(dict.fromkeys(exposed_names(family), family.name))
        found: dict[str, MetricFamily] = {}
        for registry in self._registries:
            for family in registry.collect():
                if not self._clashes(family, taken):
                    found.setdefault(family.name, family)
        for family in self._runtime.collect():
            found.setdefault(family.name, family)
        return list(found.values())

    def metrics(self, families: Iterable[MetricFamily] | None = None) -> list[Metric]:
        """Bridged families (collected now unless given) as OpenTelemetry metrics, cumulative."""
        times = Times(time_ns(), self._start_ns)
        families = self.families() if families is None else families
        return [m for f in families if (m := otlp_metric(f, times)) is not None]

    def declare_instrument(self, prometheus_name: str, instrument: str) -> None:
        """An OpenTelemetry instrument will be exported as `prometheus_name`: refuse a clash."""
        with self._lock:
            self._otel_names[prometheus_name] = instrument
        for family in self._bridged():
            if prometheus_name in exposed_names(family):
                raise TelemetryConfigError(_clash_message(family, prometheus_name, instrument))

    def _bridged(self) -> Iterable[MetricFamily]:
        for registry in self._registries:
            yield from registry.collect()

    def _check_registries(self) -> None:
        owner: dict[str, int] = {}
        for index, registry in enumerate(self._registries):
            for family in registry.collect():
                for name in exposed_names(family):
                    if owner.setdefault(name, index) != index:
                        raise TelemetryConfigError(
                            f"{name!r} is registered in two of the prometheus_client registries "
                            "given to setup_telemetry; register each metric in one of them"
                        )

    def _clashes(self, family: MetricFamily, taken: dict[str, str]) -> bool:
        # Registered after start-up and clashing with an instrument: left out, logged once.
        clash = next((n for n in exposed_names(family) if n in taken), None)
        if clash is None:
            return False
        if family.name not in self._reported:
            self._reported.add(family.name)
            log.error(_clash_message(family, clash, taken[clash]))
        return True


def _clash_message(family: MetricFamily, name: str, instrument: str) -> str:
    return (
        f"{name!r} is defined twice: by prometheus_client ({family.type} {family.name!r}) and by "
        f"the OpenTelemetry instrument {instrument!r}; rename one of them or remove the "
        "prometheus_client metric (the bridge would serve both under one name)"
    )
