"""`GET /health` with the real servers."""

from __future__ import annotations

from tests.conftest import make_client
from tests.test_cache import closed_port


def test_healthy_without_redis(sqlite_url: str) -> None:
    with make_client(sqlite_url) as api:
        response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "services": {"database": "healthy", "redis": "not configured"},
    }


def test_healthy_with_postgres_and_redis(postgres_url: str, redis_url: str) -> None:
    with make_client(postgres_url, redis_url) as api:
        response = api.get("/health")
    assert response.status_code == 200
    assert response.json()["services"] == {"database": "healthy", "redis": "healthy"}


def test_database_unreachable_is_503_with_the_same_shape(sqlite_url: str) -> None:
    from fastapi.testclient import TestClient

    from otel import TelemetryConfig
    from service.app import create_app
    from service.config import Settings

    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/test"
    settings = Settings(database_url=url, migrate_on_start=False, db_timeout_seconds=1)
    with TestClient(create_app(settings, TelemetryConfig())) as api:
        response = api.get("/health")
        assert response.status_code == 503
        assert response.json() == {
            "status": "unhealthy",
            "services": {"database": "unhealthy", "redis": "not configured"},
        }
        memo = api.get("/memos/1")
        assert memo.status_code == 503
        assert memo.json() == {"detail": "Database unavailable, try again shortly"}
        assert api.get("/metrics").status_code == 200
