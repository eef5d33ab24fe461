"""Shared fixtures: real SQLite files, the real PostgreSQL and Redis, and scrape helpers."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from otel import TelemetryConfig
from service.app import create_app
from service.config import Settings
from tests.helpers import Scrape, scrape
from tests.servers import Processes

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# Database 13 is this suite's own; the end-to-end stack test uses another.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def require_server(host: str, port: int, what: str) -> None:
    """Fail in CI, skip elsewhere, when a real server the test needs is not running."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        message = f"{what} is not reachable at {host}:{port}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must start it: see .ci/run)")
        pytest.skip(message)


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
    require_server("127.0.0.1", 5432, "PostgreSQL")
    import asyncpg

    name = f"memo_test_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def redis_url() -> Iterator[str]:
    require_server("127.0.0.1", 6379, "Redis")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


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
