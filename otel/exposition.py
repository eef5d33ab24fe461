"""The `/metrics` endpoint: Prometheus text, or OpenMetrics when the scraper asks for it."""

from __future__ import annotations

import gzip
from typing import Any

import anyio.to_thread
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from otel.middleware import Receive, Scope, Send


class MetricsEndpoint:
    """Renders a registry off the event loop, so a large scrape never stalls requests."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"Method Not Allowed\n", b"text/plain; charset=utf-8")
            return
        body, content_type = await anyio.to_thread.run_sync(self.render, headers.get("accept", ""))
        extra: list[tuple[bytes, bytes]] = []
        if "gzip" in headers.get("accept-encoding", ""):
            body = gzip.compress(body, compresslevel=1)
            extra.append((b"content-encoding", b"gzip"))
        if scope["method"] == "HEAD":
            body = b""
        await _respond(send, 200, body, content_type.encode(), extra)

    def render(self, accept: str) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept)
        return encoder(self._registry), content_type


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers: list[Any] = [(b"content-type", content_type), *(extra or [])]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
