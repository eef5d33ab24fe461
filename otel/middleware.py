"""Pure ASGI middleware that records every HTTP request into the contract's metrics and,
when tracing is on, wraps it in a server span named by method and route template."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import Token
from time import perf_counter
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from otel.metrics.contract import OTHER_METHOD, STANDARD_METHODS, UNMATCHED_ENDPOINT
from otel.routes import RouteTemplates
from otel.traces.propagation import extract_parent, raw_headers

log = logging.getLogger(__name__)


class RequestRecorder(Protocol):
    def record(self, method: str, endpoint: str, status_code: int, seconds: float) -> None: ...


class SpanStarter(Protocol):
    """Starts a request's server span: `ServerTracer`, or a test's adapter over an SDK `Tracer`."""

    def start_server_span(
        self, name: str, context: Context | None, attributes: Callable[[], Mapping[str, Any]]
    ) -> trace.Span: ...


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
        metrics_endpoint: ASGIApp | None = None,
        tracer: SpanStarter | None = None,
    ) -> None:
        self.app = app
        self._recorder = recorder
        self._routes = routes
        self._metrics_path = metrics_path if metrics_endpoint is not None else None
        self._metrics_endpoint = metrics_endpoint
        self._tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == self._metrics_path and self._metrics_endpoint is not None:
            await self._metrics_endpoint(scope, receive, send)
            return
        method = _method(scope)
        span, token = (None, None) if self._tracer is None else self._start_span(scope, method)
        status_code = 500
        start = perf_counter()

        def send_watching_status(message: Message) -> Awaitable[None]:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            return send(message)

        try:
            await self.app(scope, receive, send_watching_status)
        except BaseException as error:
            status_code = 500
            if span is not None:
                span.record_exception(error)
            raise
        finally:
            # Recorded while the span is current, so the duration carries it as an exemplar.
            endpoint = self._record(scope, method, status_code, perf_counter() - start)
            if span is not None and token is not None:
                _finish(span, method, endpoint, status_code)
                otel_context.detach(token)

    def _start_span(self, scope: Scope, method: str) -> tuple[trace.Span, Token[Context]]:
        assert self._tracer is not None
        headers = raw_headers(scope)
        parent = extract_parent(headers)
        span = self._tracer.start_server_span(
            method, parent, lambda: _request_attributes(scope, method, headers)
        )
        return span, otel_context.attach(trace.set_span_in_context(span, parent))

    def _record(self, scope: Scope, method: str, status_code: int, seconds: float) -> str:
        endpoint = UNMATCHED_ENDPOINT
        try:
            endpoint = self._routes.endpoint(scope)
            self._recorder.record(method, endpoint, status_code, seconds)
        except Exception:  # telemetry must never break a request
            log.exception("recording request metrics failed")
        return endpoint


def _method(scope: Scope) -> str:
    method: str = scope["method"]
    return method if method in STANDARD_METHODS else OTHER_METHOD


def _finish(span: trace.Span, method: str, endpoint: str, status_code: int) -> None:
    if not span.is_recording():
        return
    if endpoint != UNMATCHED_ENDPOINT:
        span.update_name(f"{method} {endpoint}")
        span.set_attribute("http.route", endpoint)
    span.set_attribute("http.response.status_code", status_code)
    if status_code >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()


def _request_attributes(
    scope: Scope, method: str, headers: Sequence[tuple[bytes, bytes]]
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.scheme": scope.get("scheme", "http"),
        "url.path": scope.get("path", ""),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    if scope["method"] not in STANDARD_METHODS:
        attributes["http.request.method_original"] = scope["method"]
    if query := scope.get("query_string"):
        attributes["url.query"] = query.decode("latin-1")
    if client := scope.get("client"):
        attributes["client.address"] = client[0]
    if server := scope.get("server"):
        attributes["server.port"] = server[1]
    host, agent = _host_and_user_agent(headers)
    if host is not None:
        attributes["server.address"] = host.decode("latin-1").rsplit(":", 1)[0]
    if agent is not None:
        attributes["user_agent.original"] = agent.decode("latin-1")
    return attributes


def _host_and_user_agent(
    headers: Sequence[tuple[bytes, bytes]],
) -> tuple[bytes | None, bytes | None]:
    """The first value of each, in one pass over the raw headers."""
    host = agent = None
    for key, value in headers:
        name = key.lower()
        if name == b"host":
            host = value if host is None else host
        elif name == b"user-agent":
            agent = value if agent is None else agent
    return host, agent
