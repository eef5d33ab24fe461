"""`setup_telemetry(app)`: builds an app's own meter provider, readers and middleware."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import Meter, NoOpMeter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry
from starlette.applications import Starlette

from otel.config import DEFAULT_SERVICE_NAME, TelemetryConfig
from otel.export.endpoint import MetricsEndpoint
from otel.export.gauge_modes import GaugeModes
from otel.export.readers import build_readers
from otel.export.workers import WorkerExchange, workers_dir
from otel.metrics.aggregator import RequestAggregator
from otel.metrics.bridge import PrometheusBridge
from otel.metrics.checked_meter import CheckedMeter
from otel.metrics.contract import REQUEST_DURATION, REQUESTS
from otel.metrics.views import contract_views
from otel.middleware import TelemetryMiddleware
from otel.routes import RouteTemplates
from otel.traces.child_spans import ChildSpans
from otel.traces.provider import build_tracing

log = logging.getLogger(__name__)

INSTRUMENTATION_NAME = "otel.fastapi"


@dataclass
class Telemetry:
    """The handle `setup_telemetry` returns: the app's meter, its registry, and `shutdown()`."""

    config: TelemetryConfig
    meter_provider: MeterProvider | None = None
    registry: CollectorRegistry | None = None
    exchange: WorkerExchange | None = None
    tracer_provider: TracerProvider | None = None
    bridge: PrometheusBridge | None = None
    child_spans: ChildSpans | None = None
    _shut_down: bool = field(default=False, repr=False)

    @property
    def enabled(self) -> bool:
        return self.meter_provider is not None

    def get_meter(self, name: str, version: str | None = None) -> Meter:
        """A meter whose instruments are exported on every configured path."""
        if self.meter_provider is None:
            return NoOpMeter(name, version=version)
        meter = self.meter_provider.get_meter(name, version)
        return meter if self.bridge is None else CheckedMeter(meter, self.bridge)

    @property
    def meter(self) -> Meter:
        return self.get_meter(INSTRUMENTATION_NAME)

    def shutdown(self) -> None:
        """Flush the push exporters and release the registry; safe to call twice."""
        if self._shut_down or self.meter_provider is None:
            return
        self._shut_down = True
        if self.exchange is not None:
            self.exchange.close()
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

    def instrument_sqlalchemy(self, engine: Any) -> None:
        """Child spans for the queries of `engine`; nothing when tracing is off."""
        if self.child_spans is not None:
            self.child_spans.instrument_sqlalchemy(engine)

    def instrument_redis(self, client: Any) -> None:
        """Child spans for the commands of this Redis client; nothing when tracing is off."""
        if self.child_spans is not None:
            self.child_spans.instrument_redis(client)


def setup_telemetry(
    app: Starlette,
    config: TelemetryConfig | None = None,
    *,
    service_name: str = DEFAULT_SERVICE_NAME,
    env: Mapping[str, str] | None = None,
    registries: Sequence[CollectorRegistry] = (REGISTRY,),
    gauge_modes: Mapping[str, str] | None = None,
) -> Telemetry:
    """Instrument `app` with its own telemetry, configured from `OTEL_*` unless `config` is given.

    `registries` are the prometheus_client registries bridged onto every export path (the
    default `REGISTRY`; include it when passing others to keep it). `gauge_modes` chooses how a
    gauge is combined across worker processes (see `otel/export/gauge_modes.py`).

    Raises `TelemetryConfigError` for settings it cannot use; never raises on the request path.
    """
    config = config or TelemetryConfig.from_env(env, service_name=service_name)
    if config.disabled:
        return Telemetry(config)
    resource = _resource(config.service_name)
    registry = CollectorRegistry(auto_describe=True)
    tracing = build_tracing(
        config.traces_exporters,
        config.span_processors,
        resource,
        config.env,
        INSTRUMENTATION_NAME,
    )
    tracer_provider = tracing.provider if tracing else None
    modes = GaugeModes.from_env(config.env, gauge_modes)
    bridge = PrometheusBridge(registries)
    for spec in (REQUESTS, REQUEST_DURATION):  # recorded by the middleware, not an instrument
        bridge.declare_instrument(spec.prometheus_name, spec.instrument)
    aggregator = RequestAggregator(exemplars=tracer_provider is not None)
    provider = MeterProvider(
        metric_readers=build_readers(config, registry, aggregator, resource, bridge),
        resource=resource,
        views=contract_views(),
        shutdown_on_exit=False,
    )
    endpoint = (
        MetricsEndpoint(aggregator, registry, bridge, modes) if config.serves_metrics else None
    )
    directory = workers_dir(config.env)
    if endpoint is not None and directory is not None:
        endpoint.exchange = WorkerExchange(directory, endpoint.snapshot)
    app.add_middleware(
        TelemetryMiddleware,
        recorder=aggregator,
        routes=RouteTemplates(app),
        metrics_path=config.metrics_path,
        metrics_endpoint=endpoint,
        tracer=tracing.server_tracer if tracing else None,
    )
    exchange = endpoint.exchange if endpoint else None
    child_spans = tracing.child_spans if tracing else None
    return Telemetry(config, provider, registry, exchange, tracer_provider, bridge, child_spans)


def _resource(default_service_name: str) -> Resource:
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win; the default only fills the gap.
    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        return detected.merge(Resource({SERVICE_NAME: default_service_name}))
    return detected
