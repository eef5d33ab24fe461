"""Helpers shared by the fault tests and the bad-input tests: real servers, measured requests."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import POSTGRES_ADMIN_URL, require_server
from tests.faults.proxy import FaultProxy

# Redis database 12 belongs to these tests (the main suite uses 13, the stack test 15).
REDIS_URL = os.environ.get("TEST_FAULTS_REDIS_URL", "redis://127.0.0.1:6379/12")
# `make soak` sets SOAK=1: the same tests with longer outages and more requests.
SOAK = os.environ.get("SOAK", "") not in ("", "0")


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """A new database on the real PostgreSQL, as an asyncpg URL; dropped afterwards."""
    require_server("127.0.0.1", 5432, "PostgreSQL")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin_sql(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def empty_redis_database(url: str = REDIS_URL) -> Iterator[str]:
    """Redis database `url`, flushed before and after."""
    require_server("127.0.0.1", 6379, "Redis")
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def admin_sql(statement: str) -> None:
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def through(proxy: FaultProxy, url: str, server: str) -> str:
    """`url` with its server address `server` replaced by the proxy's."""
    assert server in url, (server, url)
    return url.replace(server, proxy.address)


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def timed(
    client: httpx.Client, method: str, path: str, **kwargs: object
) -> tuple[httpx.Response, float]:
    """The response and how long it took, in seconds."""
    start = time.perf_counter()
    response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    return response, time.perf_counter() - start
