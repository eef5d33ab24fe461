"""The variants: which app module, which environment, how to tell the instrumentation is live."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

BARE = "bare"
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
    routes: tuple[str, ...] = ()  # the routes wrk loads; empty: the run's (toy) routes
    baseline: str = BARE  # the variant whose medians, in the same run, the ratios are taken to
    workers: int = 1  # uvicorn --workers; all of them on the server core

    @property
    def app(self) -> str:
        return f"{self.module}:app"

    @property
    def is_memo_service(self) -> bool:
        return self.module == MEMO_MODULE

    def unavailable(self) -> str | None:
        """Why this variant cannot run here, or None."""
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                return f"not installed: {module} (pip install -e '.[bench]')"
        return self.check() if self.check else None

    def environment(self, sink_endpoint: str, data_dir: str = "") -> dict[str, str]:
        """The variables, with {sink}, {data_dir} (a fresh directory) and {redis} filled in."""
        fill = {"sink": sink_endpoint, "data_dir": data_dir, "redis": BENCH_REDIS_URL}
        return {k: v.format(**fill) for k, v in self.env.items()}


def ours_tracing_missing() -> str | None:
    """Tracing counts as built once `otel` has `setup_tracing` or a `traces_exporters` setting."""
    import otel

    fields = {f.name for f in dataclasses.fields(otel.TelemetryConfig)}
    if hasattr(otel, "setup_tracing") or "traces_exporters" in fields:
        return None
    return "not available yet: otel has no tracing support"


def redis_missing() -> str | None:
    """The traced memo variants cache in the Redis at BENCH_REDIS_URL: it must answer PING."""
    import redis

    try:
        redis.Redis.from_url(BENCH_REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as error:
        return f"Redis at {BENCH_REDIS_URL} does not answer: {error}"
    return None


MEMO_MODULE = "service.main"
# The memo routes wrk loads: a read by id (a memo the check creates) and a create.
MEMO_GET = "GET /memos/{id}"
MEMO_POST = "POST /memos/"
MEMO_ROUTES = (MEMO_GET, MEMO_POST)
# Database 12, keys under a namespace of their own that expire with the cache TTL: the harness
# never flushes a Redis it shares.
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
_MEMO = {"DATA_DIR": "{data_dir}", "LOG_LEVEL": "WARNING"}
_MEMO_OFF = {**_MEMO, "OTEL_SDK_DISABLED": "true"}
_MEMO_REDIS = {"REDIS_URL": "{redis}", "CACHE_NAMESPACE": f"bench-{os.getpid()}"}

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
_OTLP_TRACES_10 = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "0.1",
}

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
        "ours, metrics on /metrics + traces 100% over OTLP",
        "bench.apps.ours_env",
        probe="fastapi_requests_total{",
        pushes=(TRACES,),
        env={**_OTLP_HTTP, **_OTLP_TRACES},
        check=ours_tracing_missing,
    ),
    Variant(
        "ours-traces-10",
        "ours, metrics on /metrics + traces 10% (parentbased_traceidratio) over OTLP",
        "bench.apps.ours_env",
        probe="fastapi_requests_total{",
        pushes=(TRACES,),
        env={**_OTLP_HTTP, **_OTLP_TRACES_10},
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
        "memo-off",
        "memo service, OTEL_SDK_DISABLED=true",
        MEMO_MODULE,
        env=_MEMO_OFF,
        routes=MEMO_ROUTES,
        baseline="memo-off",
    ),
    Variant(
        "memo",
        "memo service, telemetry on (metrics, /metrics)",
        MEMO_MODULE,
        probe="fastapi_requests_total{",
        env=_MEMO,
        routes=MEMO_ROUTES,
        baseline="memo-off",
    ),
    Variant(
        "memo-off-w4",
        "memo service, 4 workers, OTEL_SDK_DISABLED=true",
        MEMO_MODULE,
        env=_MEMO_OFF,
        routes=MEMO_ROUTES,
        baseline="memo-off-w4",
        workers=4,
    ),
    Variant(
        "memo-w4",
        "memo service, 4 workers, telemetry on",
        MEMO_MODULE,
        probe="fastapi_requests_total{",
        env=_MEMO,
        routes=MEMO_ROUTES,
        baseline="memo-off-w4",
        workers=4,
    ),
    Variant(
        "memo-redis-off",
        "memo service with Redis, OTEL_SDK_DISABLED=true",
        MEMO_MODULE,
        env={**_MEMO_OFF, **_MEMO_REDIS},
        routes=MEMO_ROUTES,
        baseline="memo-redis-off",
        check=redis_missing,
    ),
    Variant(
        "memo-traces-10",
        "memo service with Redis, traces 10% with SQL and Redis child spans",
        MEMO_MODULE,
        probe="fastapi_requests_total{",
        pushes=(TRACES,),
        env={**_MEMO, **_MEMO_REDIS, **_OTLP_HTTP, **_OTLP_TRACES_10},
        routes=MEMO_ROUTES,
        baseline="memo-redis-off",
        check=redis_missing,
    ),
    Variant(
        "memo-redis",
        "diagnostic: memo service with Redis, metrics only",
        MEMO_MODULE,
        probe="fastapi_requests_total{",
        env={**_MEMO, **_MEMO_REDIS},
        routes=MEMO_ROUTES,
        baseline="memo-redis-off",
        check=redis_missing,
        default=False,
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
    """The named variants with their baselines (bare always first), or the default set."""
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    wanted = set(names) if names else {v.name for v in VARIANTS if v.default}
    wanted |= {BY_NAME[n].baseline for n in wanted} | {BARE}
    return [v for v in VARIANTS if v.name in wanted]
