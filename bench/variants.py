"""The variants: which app module, which environment, how to tell the instrumentation is live."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

METRICS = "/v1/metrics"
TRACES = "/v1/traces"


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    module: str
    # Must appear in GET /metrics once the app served a request; None: the variant only pushes.
    probe: str | None = None
    # OTLP paths the sink must have received from this variant while it ran.
    pushes: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    requires: tuple[str, ...] = ()  # importable modules
    check: Callable[[], str | None] | None = None  # returns why it cannot run yet, or None
    default: bool = True

    @property
    def app(self) -> str:
        return f"{self.module}:app"

    def unavailable(self) -> str | None:
        """Why this variant cannot run here, or None."""
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                return f"not installed: {module} (pip install -e '.[bench]')"
        return self.check() if self.check else None

    def environment(self, sink_endpoint: str) -> dict[str, str]:
        return {k: v.format(sink=sink_endpoint) for k, v in self.env.items()}


def ours_tracing_missing() -> str | None:
    """Tracing counts as built once `otel` has `setup_tracing` or a `traces_exporters` setting."""
    import otel

    fields = {f.name for f in dataclasses.fields(otel.TelemetryConfig)}
    if hasattr(otel, "setup_tracing") or "traces_exporters" in fields:
        return None
    return "not available yet: otel has no tracing support"


_OTLP_HTTP = {
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "{sink}",
}
_OTLP_METRICS = {
    **_OTLP_HTTP,
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
}
_OTLP_TRACES = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "always_on"}

BARE = "bare"

VARIANTS: tuple[Variant, ...] = (
    Variant(BARE, "bare app", "bench.apps.bare"),
    Variant(
        "ours",
        "ours, metrics, in-process /metrics",
        "bench.apps.ours",
        probe="fastapi_requests_total{",
    ),
    Variant(
        "ours-otlp",
        "ours, metrics over OTLP (1 s interval)",
        "bench.apps.ours_env",
        pushes=(METRICS,),
        env=_OTLP_METRICS,
    ),
    Variant(
        "ours-traces",
        "ours, metrics + traces 100% over OTLP",
        "bench.apps.ours_env",
        pushes=(METRICS, TRACES),
        env={**_OTLP_METRICS, **_OTLP_TRACES},
        check=ours_tracing_missing,
    ),
    Variant(
        "upstream",
        "FastAPIInstrumentor + PrometheusMetricReader",
        "bench.apps.upstream",
        probe="http_server_duration",
    ),
    Variant(
        "upstream-traces",
        "FastAPIInstrumentor + Prometheus + SDK tracer over OTLP",
        "bench.apps.upstream_traces",
        probe="http_server_duration",
        pushes=(TRACES,),
        env=_OTLP_HTTP,
    ),
    Variant(
        "instrumentator",
        "prometheus-fastapi-instrumentator",
        "bench.apps.instrumentator",
        probe="http_requests_total{",
        requires=("prometheus_fastapi_instrumentator",),
    ),
    Variant(
        "starlette-exporter",
        "starlette_exporter",
        "bench.apps.starlette_exporter_app",
        probe="starlette_requests_total{",
        requires=("starlette_exporter",),
    ),
    Variant(
        "promclient",
        "hand-written pure-ASGI prometheus_client",
        "bench.apps.handwritten",
        probe="fastapi_requests_total{",
    ),
    Variant(
        "ours-promclient",
        "diagnostic: our middleware, prometheus_client recorder",
        "bench.apps.ours_promclient",
        probe="fastapi_requests_total{",
        default=False,
    ),
)

BY_NAME = {variant.name: variant for variant in VARIANTS}


def select(names: tuple[str, ...]) -> list[Variant]:
    """The named variants (bare always first), or the default set when none are named."""
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    chosen = [v for v in VARIANTS if (v.name in names if names else v.default)]
    if BY_NAME[BARE] not in chosen:
        chosen.insert(0, BY_NAME[BARE])
    return chosen
