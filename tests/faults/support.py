"""Helpers shared by the fault tests and the bad-input tests: real servers, measured requests."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests import servers
from tests.faults.proxy import FaultProxy
from tests.servers import fresh_postgres_database  # noqa: F401  (used by the fault tests)

# Redis database 12 belongs to these tests (the main suite uses 13, the stack test 15).
REDIS_URL = os.environ.get("TEST_FAULTS_REDIS_URL", "redis://127.0.0.1:6379/12")
# `make soak` sets SOAK=1: the same tests with longer outages and more requests.
SOAK = os.environ.get("SOAK", "") not in ("", "0")
# The one factor for bounds that depend on the machine's speed: the slack on top of a timeout
# the service is configured with, and how long to wait for something to happen. Raise it on a
# slow or busy machine (TEST_TIME_FACTOR=3); the configured timeouts themselves never scale.
TIME_FACTOR = float(os.environ.get("TEST_TIME_FACTOR", "1"))


def scaled(seconds: float) -> float:
    """A machine-speed bound, times TEST_TIME_FACTOR."""
    return seconds * TIME_FACTOR


@contextmanager
def empty_redis_database(url: str = REDIS_URL) -> Iterator[str]:
    """These tests' own Redis database, flushed before and after."""
    with servers.empty_redis_database(url) as flushed:
        yield flushed


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
