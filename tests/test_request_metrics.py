"""How requests are counted: route templates, cardinality, errors, methods."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from otel import UNMATCHED_ENDPOINT, TelemetryConfig, setup_telemetry
from tests.helpers import scrape


def small_app() -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/api")

    @router.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("handler failed")

    sub = FastAPI()

    @sub.get("/users/{name}")
    async def user(name: str) -> dict[str, str]:
        return {"name": name}

    app.include_router(router)
    app.mount("/v2", sub)
    setup_telemetry(app, TelemetryConfig())
    return app


def test_endpoint_is_the_route_template_with_prefixes_and_mounts() -> None:
    with TestClient(small_app()) as client:
        client.get("/api/items/1")
        client.get("/v2/users/kim")
        metrics = scrape(client)
    assert (
        metrics.value(
            "fastapi_requests_total",
            method="GET",
            endpoint="/api/items/{item_id}",
            status_code="200",
        )
        == 1
    )
    assert (
        metrics.value(
            "fastapi_requests_total", method="GET", endpoint="/v2/users/{name}", status_code="200"
        )
        == 1
    )


def test_ids_and_unmatched_paths_do_not_grow_the_endpoint_label(client: TestClient) -> None:
    for i in range(300):
        client.get(f"/memos/{i}")
        client.get(f"/random/{i}/path")
        client.get(f"/memos/{i}/nested/unknown")
    endpoints = scrape(client).label_values("fastapi_requests_total", "endpoint")
    assert endpoints == {"/memos/{memo_id}", UNMATCHED_ENDPOINT}


def test_non_standard_methods_become_other(client: TestClient) -> None:
    for method in ("FOO", "BREW", "PROPFIND"):
        client.request(method, "/memos/")
    methods = scrape(client).label_values("fastapi_requests_total", "method")
    assert methods == {"_OTHER"}


def test_a_raising_handler_counts_as_500_and_still_raises() -> None:
    app = small_app()
    with TestClient(app) as client:
        with pytest.raises(RuntimeError, match="handler failed"):
            client.get("/boom")
        metrics = scrape(client)
    labels = {"method": "GET", "endpoint": "/boom"}
    assert metrics.value("fastapi_requests_total", status_code="500", **labels) == 1
    assert metrics.value("fastapi_request_duration_seconds_count", **labels) == 1
    seconds = metrics.value("fastapi_request_duration_seconds_sum", **labels)
    assert seconds is not None and seconds > 0


def test_client_errors_keep_their_status(client: TestClient) -> None:
    client.post("/memos/", content=b"{not json", headers={"content-type": "application/json"})
    metrics = scrape(client)
    assert (
        metrics.value(
            "fastapi_requests_total", method="POST", endpoint="/memos/", status_code="422"
        )
        == 1
    )
