"""The service freezes its start-up heap (GC_FREEZE, default on) and gives it back on shutdown."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from otel import TelemetryConfig
from service.app import create_app
from service.config import Settings


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_start_up_heap_is_frozen_while_the_app_runs(sqlite_url: str) -> None:
    app = create_app(Settings(database_url=sqlite_url), TelemetryConfig())
    with TestClient(app) as client:
        frozen = gc.get_freeze_count()
        assert client.get("/health").status_code == 200
    assert frozen > 10_000  # the modules, routes and telemetry built at start-up
    assert gc.get_freeze_count() == 0


def test_gc_freeze_false_leaves_the_collector_alone(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GC_FREEZE", "false")
    settings = Settings(database_url=sqlite_url)
    assert settings.gc_freeze is False
    with TestClient(create_app(settings, TelemetryConfig())) as client:
        assert client.get("/health").status_code == 200
        assert gc.get_freeze_count() == 0
