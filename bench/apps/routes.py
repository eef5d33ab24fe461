"""The two routes every variant serves, and a `/metrics` route for the peers that need one."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response


@asynccontextmanager
async def frozen_heap(app: FastAPI) -> AsyncIterator[None]:
    """Every variant freezes its start-up heap after start-up, as the memo service does
    (GC_FREEZE=false leaves the collector alone, there too)."""
    if os.environ.get("GC_FREEZE", "true").lower() not in ("false", "0"):
        gc.collect()
        gc.freeze()
    yield


def build_app() -> FastAPI:
    """A cheap route and a parametrised one; no response models, so no validation cost."""
    app = FastAPI(lifespan=frozen_heap)

    @app.get("/ping", response_model=None)
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/items/{item_id}", response_model=None)
    async def read_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    return app


def add_metrics_route(app: FastAPI, registry: CollectorRegistry) -> None:
    def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_route("/metrics", metrics)
