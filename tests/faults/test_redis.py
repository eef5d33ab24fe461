"""Redis going away, partitioned or slow: every memo request is served from the database within a
bounded time, /health says degraded, and once Redis is back no stale entry is ever served.

The service reaches the real Redis through a FaultProxy. Its latency mode delivers every command
late, so commands the service gave up on (a cache write of an old value, say) still land in Redis
after the service moved on: the cache has to be safe against exactly that.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from tests.faults.proxy import FaultProxy
from tests.faults.support import SOAK, scaled, timed
from tests.servers import Processes, start_service

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REDIS_TIMEOUT = 0.25  # the service's default REDIS_TIMEOUT_SECONDS
# A request may wait out the Redis timeout once for its read and once for a write's invalidation;
# the rest is the database and a noisy machine.
BOUND = 4 * REDIS_TIMEOUT + scaled(0.5)
OUTAGE_ROUNDS = 40 if SOAK else 4
RETRY_PAUSE_SECONDS = 2.0  # the cache leaves Redis alone this long after a failure
READS_AFTER_RETURN = 10


@pytest.fixture(scope="module")
def service(
    postgres_url: str,
    redis_url: str,
    processes: Processes,
    proxy_to: Callable[[int], FaultProxy],
) -> Iterator[tuple[httpx.Client, FaultProxy]]:
    proxy = proxy_to(6379)
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url.replace("6379", str(proxy.port))}
    url = start_service(processes, "redis-faults", env)
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client, proxy


def listed(client: httpx.Client, memo_id: int) -> str:
    """The memo's title as the first page of the list shows it."""
    [title] = [m["title"] for m in client.get("/memos/").json() if m["id"] == memo_id]
    return title


def cached_keys(redis_url: str) -> list[bytes]:
    client = redis.Redis.from_url(redis_url)
    try:
        return list(client.scan_iter("memos:*"))
    finally:
        client.close()


@pytest.mark.parametrize("fault", ["cut", "blackhole", "latency"])
def test_redis_away_or_slow_serves_from_the_database_and_never_stale(
    fault: str, service: tuple[httpx.Client, FaultProxy], redis_url: str
) -> None:
    client, proxy = service
    memo = client.post("/memos/", json={"title": "v0", "content": "c"}).json()
    path = f"/memos/{memo['id']}"
    for _ in range(2):  # the second read is a cache hit
        assert client.get(path).json()["title"] == "v0"
        assert listed(client, memo["id"]) == "v0"
    assert len(cached_keys(redis_url)) >= 3  # generation, the memo, the list

    if fault == "latency":
        proxy.latency(2 * REDIS_TIMEOUT)
    else:
        getattr(proxy, fault)()
    slowest = 0.0
    version = 0
    for _ in range(OUTAGE_ROUNDS):
        version += 1
        title = f"v{version}"
        requests = [
            ("PUT", path, {"title": title}),  # a write during the outage
            ("GET", path, None),
            ("GET", "/memos/", None),
            ("GET", f"/memos/search/?q={title}", None),
        ]
        for method, request_path, body in requests:
            response, seconds = timed(client, method, request_path, json=body)
            assert response.status_code == 200, response.text
            slowest = max(slowest, seconds)
        assert client.get(path).json()["title"] == title
        health, seconds = timed(client, "GET", "/health")
        slowest = max(slowest, seconds)
        assert health.status_code == 200
        assert health.json() == {
            "status": "degraded",
            "services": {"database": "healthy", "redis": "unhealthy"},
        }
    print(f"{fault}: slowest request during the outage {slowest:.3f}s")
    assert slowest < BOUND, f"{fault}: a request took {slowest:.2f}s"

    sent_before = proxy.sent_upstream
    proxy.restore()
    # Read until the service sends Redis commands again (after its retry pause), then some more.
    served: set[str] = set()
    deadline = time.monotonic() + scaled(3 * RETRY_PAUSE_SECONDS)
    reads_with_redis = 0
    while reads_with_redis < READS_AFTER_RETURN:
        assert time.monotonic() < deadline, "the service did not use Redis again"
        served.add(client.get(path).json()["title"])
        served.add(listed(client, memo["id"]))
        reads_with_redis += proxy.sent_upstream > sent_before
        time.sleep(0.05)
    assert served == {f"v{version}"}, f"stale entries served after the restore: {served}"
    assert client.get("/health").json()["status"] == "healthy"
    # Redis is used again: the fresh value is cached under a new generation.
    assert client.get(path).json()["title"] == f"v{version}"
    assert len(cached_keys(redis_url)) >= 3
