"""Shared fixtures: real SQLite files, the real PostgreSQL and Redis, and scrape helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from otel import TelemetryConfig
from service.app import create_app
from service.config import Settings
from tests.helpers import Scrape, scrape
from tests.servers import (  # noqa: F401  (require_server, POSTGRES_ADMIN_URL re-exported)
    POSTGRES_ADMIN_URL,
    Processes,
    empty_redis_database,
    fresh_postgres_database,
    require_server,
)

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture(scope="module")
def empty_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty env file, so a developer's own .env cannot change what compose resolves."""
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Real server processes for one test, stopped at its end whatever happens."""
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'memos.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    with fresh_postgres_database("memo_test") as url:
        yield url


@pytest.fixture
def redis_url() -> Iterator[str]:
    with empty_redis_database(REDIS_URL) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


def make_client(
    database_url: str, redis_url: str | None = None, config: TelemetryConfig | None = None
) -> TestClient:
    settings = Settings(database_url=database_url, redis_url=redis_url)
    return TestClient(create_app(settings, config or TelemetryConfig()))


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    with make_client(sqlite_url) as test_client:
        yield test_client


@pytest.fixture
def metrics(client: TestClient) -> Scrape:
    return scrape(client)
