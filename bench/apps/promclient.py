"""The prometheus_client baseline: the contract's two series, by hand, on a registry of its own.

Used by the hand-written middleware variant and as the baseline of the scrape and memory runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from time import perf_counter
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from otel.metrics.contract import (
    DURATION_BUCKETS,
    OTHER_METHOD,
    REQUEST_DURATION,
    REQUESTS,
    STANDARD_METHODS,
    UNMATCHED_ENDPOINT,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def baseline_registry() -> CollectorRegistry:
    """A fresh registry with the same runtime collectors our `/metrics` serves."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in (GCCollector, PlatformCollector, ProcessCollector):
        collector(registry=registry)
    return registry


class ContractMetrics:
    """The contract's request counter and duration histogram, with its labels and buckets."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            REQUESTS.prometheus_name, REQUESTS.description, REQUESTS.attributes, registry=registry
        )
        self.duration = Histogram(
            REQUEST_DURATION.prometheus_name,
            REQUEST_DURATION.description,
            REQUEST_DURATION.attributes,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )

    def record(self, method: str, endpoint: str, status_code: int, seconds: float) -> None:
        self.requests.labels(method, endpoint, str(status_code)).inc()
        self.duration.labels(method, endpoint).observe(seconds)


class PromClientMiddleware:
    """A minimal pure-ASGI middleware: route template, method folding, 500 on a raised handler."""

    def __init__(self, app: ASGIApp, metrics: ContractMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        status = 500
        start = perf_counter()

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except BaseException:
            status = 500
            raise
        finally:
            self.metrics.record(_method(scope), _endpoint(scope), status, perf_counter() - start)


def _method(scope: Scope) -> str:
    method: str = scope["method"]
    return method if method in STANDARD_METHODS else OTHER_METHOD


def _endpoint(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path_format", UNMATCHED_ENDPOINT))
