"""The `/metrics` endpoint: Prometheus text, or OpenMetrics when the scraper asks for it."""

from __future__ import annotations

import gzip

import anyio.to_thread
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric as MetricFamily
from starlette.types import Receive, Scope, Send

from otel.export.gauge_modes import GaugeModes
from otel.export.render import render_request_metrics
from otel.export.workers import Snapshot, WorkerExchange, merge_into, snapshot_of
from otel.metrics.aggregator import RequestAggregator
from otel.metrics.bridge import PrometheusBridge

_EOF = "# EOF\n"


class MetricsEndpoint:
    """Serves the request metrics, the registry (SDK instruments) and the bridged
    prometheus_client families.

    Rendering runs off the event loop, so a large scrape never stalls requests.
    """

    def __init__(
        self,
        aggregator: RequestAggregator,
        registry: CollectorRegistry,
        bridge: PrometheusBridge | None = None,
        gauge_modes: GaugeModes | None = None,
    ) -> None:
        self._aggregator = aggregator
        self._registry = registry
        self._bridge = bridge
        self._gauge_modes = gauge_modes or GaugeModes()
        self.exchange: WorkerExchange | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"Method Not Allowed\n", b"text/plain; charset=utf-8")
            return
        headers = dict(scope.get("headers", ()))
        accept = headers.get(b"accept", b"").decode("latin-1")
        body, content_type = await anyio.to_thread.run_sync(self.exposition, accept)
        extra = []
        if b"gzip" in headers.get(b"accept-encoding", b""):
            body = gzip.compress(body, compresslevel=1)
            extra.append((b"content-encoding", b"gzip"))
        await _respond(send, 200, body, content_type.encode(), extra, scope["method"] == "HEAD")

    def exposition(self, accept: str) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept)
        openmetrics = content_type.startswith("application/openmetrics-text")
        families: CollectedFamilies
        if self.exchange is None:
            entries, families = self._aggregator.entries(), CollectedFamilies(self._families())
        else:
            # This worker's entries are added as they are; only its families go through a snapshot.
            own = snapshot_of((), self._families(), self._gauge_modes)
            peers = self.exchange.peer_snapshots()
            merged, merged_families = merge_into(self._aggregator.entries(), own, peers)
            entries, families = merged, CollectedFamilies(merged_families)
        ours = render_request_metrics(entries, self._aggregator.bounds, openmetrics=openmetrics)
        rest = encoder(families).decode()  # any object with collect() will do
        if openmetrics:
            rest = rest.removesuffix(_EOF) + _EOF
        return (ours + rest).encode(), content_type

    def snapshot(self) -> Snapshot:
        """This worker's state, for its peers (see otel/export/workers.py)."""
        return snapshot_of(self._aggregator.live_entries(), self._families(), self._gauge_modes)

    def _families(self) -> list[MetricFamily]:
        sdk = list(self._registry.collect())
        bridged = self._bridge.families(served=sdk) if self._bridge is not None else []
        return [*sdk, *bridged]


class CollectedFamilies:
    """Already collected families, in the shape prometheus_client's encoders read."""

    def __init__(self, families: list[MetricFamily]) -> None:
        self._families = families

    def collect(self) -> list[MetricFamily]:
        return self._families


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
    head: bool = False,
) -> None:
    headers = [(b"content-type", content_type), *(extra or [])]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
