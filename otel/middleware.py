"""Pure ASGI middleware that records every HTTP request into the contract's instruments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any, Protocol

from otel.contract import OTHER_METHOD, STANDARD_METHODS
from otel.routes import RouteTemplates

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestRecorder(Protocol):
    def record(self, method: str, endpoint: str, status_code: int, seconds: float) -> None: ...


class MetricsEndpoint(Protocol):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


class TelemetryMiddleware:
    """Counts and times each request under its route template; a raised handler counts as 500.

    The metrics endpoint is answered here, before routing, so scrapes are never counted.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        recorder: RequestRecorder,
        routes: RouteTemplates,
        metrics_path: str | None = None,
        metrics_endpoint: MetricsEndpoint | None = None,
    ) -> None:
        self.app = app
        self._recorder = recorder
        self._routes = routes
        self._metrics_path = metrics_path if metrics_endpoint is not None else None
        self._metrics_endpoint = metrics_endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == self._metrics_path and self._metrics_endpoint is not None:
            await self._metrics_endpoint(scope, receive, send)
            return

        status_code = 500
        start = perf_counter()

        def send_watching_status(message: Message) -> Awaitable[None]:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            return send(message)

        try:
            await self.app(scope, receive, send_watching_status)
        except BaseException:
            status_code = 500
            raise
        finally:
            self._record(scope, status_code, perf_counter() - start)

    def _record(self, scope: Scope, status_code: int, seconds: float) -> None:
        method = scope["method"]
        if method not in STANDARD_METHODS:
            method = OTHER_METHOD
        try:
            self._recorder.record(method, self._routes.endpoint(scope), status_code, seconds)
        except Exception:  # telemetry must never break a request
            _log_recording_failure()


def _log_recording_failure() -> None:
    import logging

    logging.getLogger(__name__).exception("recording request metrics failed")
