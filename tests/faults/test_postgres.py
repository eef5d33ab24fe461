"""PostgreSQL going away, cut or partitioned, while the service keeps being asked to work.

The service reaches the real PostgreSQL through a FaultProxy; the test checks the rows directly
on the real server afterwards.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.faults.proxy import FaultProxy
from tests.faults.support import SOAK, scaled, through, timed
from tests.helpers import Scrape
from tests.servers import Processes, start_service, wait_for

pytestmark = pytest.mark.postgres

UNAVAILABLE = {"detail": "Database unavailable, try again shortly"}
JSON = {"Content-Type": "application/json"}
DB_TIMEOUT = 1.0  # DB_TIMEOUT_SECONDS for the service: connect and statement timeout
OUTAGE_SECONDS = 20.0 if SOAK else 3.0


class Writer(threading.Thread):
    """Creates memos and rewrites one memo, back to back, recording what was acknowledged."""

    def __init__(self, client: httpx.Client, target: int) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.target = target  # the memo it keeps updating
        self.acknowledged: set[str] = set()  # creates answered 201
        self.failed: set[str] = set()  # creates answered 503
        self.updates: list[tuple[str, int]] = []  # (token, status), in order
        self.unexpected: list[str] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopped.is_set():
            n += 1
            try:
                self._create(f"w{n}")
                self._update(f"u{n}")
            except httpx.HTTPError as error:  # no answer at all: never acceptable
                self.unexpected.append(f"{type(error).__name__}: {error}")
            self.stopped.wait(0.01)

    def _create(self, token: str) -> None:
        response = self.client.post("/memos/", json={"title": token, "content": token})
        if response.status_code == 201:
            self.acknowledged.add(token)
        elif response.status_code == 503 and response.json() == UNAVAILABLE:
            self.failed.add(token)
        else:
            self.unexpected.append(f"POST {response.status_code} {response.text[:200]}")

    def _update(self, token: str) -> None:
        body = {"title": token, "content": token}
        response = self.client.put(f"/memos/{self.target}", json=body)
        if response.status_code not in (200, 503):
            self.unexpected.append(f"PUT {response.status_code} {response.text[:200]}")
        self.updates.append((token, response.status_code))

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)


def rows(database_url: str) -> dict[int, tuple[str, str]]:
    """Every memo's (title, content), read on the real server, not through the proxy."""
    import asyncpg

    async def read() -> dict[int, tuple[str, str]]:
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            records = await connection.fetch("SELECT id, title, content FROM memos")
        finally:
            await connection.close()
        return {r["id"]: (r["title"], r["content"]) for r in records}

    return asyncio.run(read())


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == UNAVAILABLE


MEMO_REQUESTS: list[tuple[str, str, dict[str, str] | None]] = [
    ("GET", "/memos/", None),
    ("GET", "/memos/1", None),
    ("GET", "/memos/search/?q=memo", None),
    ("POST", "/memos/", {"title": "during", "content": "outage"}),
    ("PUT", "/memos/1", {"title": "during"}),
    ("DELETE", "/memos/2", None),
]


@pytest.fixture(scope="module")
def service(
    postgres_url: str, processes: Processes, proxy_to: Callable[[int], FaultProxy]
) -> Iterator[tuple[httpx.Client, FaultProxy]]:
    proxy = proxy_to(5432)
    env = {
        "DATABASE_URL": through(proxy, postgres_url, "127.0.0.1:5432"),
        "DB_TIMEOUT_SECONDS": str(DB_TIMEOUT),
    }
    url = start_service(processes, "postgres-faults", env)
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client, proxy


@pytest.mark.parametrize("fault", ["cut", "blackhole"])
def test_database_away_is_503_json_and_the_service_recovers_by_itself(
    fault: str,
    service: tuple[httpx.Client, FaultProxy],
    postgres_url: str,
    processes: Processes,
) -> None:
    client, proxy = service
    target = client.post("/memos/", json={"title": "target", "content": "target"}).json()["id"]
    before = rows(postgres_url)
    with httpx.Client(base_url=str(client.base_url), timeout=30) as writes:
        writer = Writer(writes, target)
        writer.start()
        wait_for(lambda: writer.acknowledged and writer.updates, scaled(10), "writes before")
        getattr(proxy, fault)()  # proxy.cut() or proxy.blackhole()
        outage_start = time.monotonic()

        with ThreadPoolExecutor(len(MEMO_REQUESTS) + 2) as pool:  # all at once
            answers = [
                pool.submit(timed, client, method, path, json=body)
                for method, path, body in [*MEMO_REQUESTS, ("GET", "/health", None)]
            ]
            metrics, metrics_seconds = timed(client, "GET", "/metrics")
        *memo_answers, (health, _) = [answer.result() for answer in answers]
        for response, _ in memo_answers:
            assert_unavailable(response)
        slowest = max(seconds for _, seconds in memo_answers)
        # A cut is refused at once; a partition costs the statement or connect timeout, twice
        # at most (the pool's ping of an old connection, then a new connection).
        assert slowest < 2 * DB_TIMEOUT + scaled(1.5), f"{fault}: slowest 503 took {slowest:.2f}s"
        print(f"{fault}: slowest memo 503 in {slowest:.3f}s, /metrics in {metrics_seconds:.3f}s")

        assert health.status_code == 503
        assert health.json() == {
            "status": "unhealthy",
            "services": {"database": "unhealthy", "redis": "not configured"},
        }
        assert metrics.status_code == 200
        assert metrics_seconds < 2.0 + scaled(1.0)  # memo_total waits 2 s at most for it
        scraped = Scrape(client.get("/metrics").text)
        assert scraped.value(
            "fastapi_requests_total", method="GET", endpoint="/memos/", status_code="503"
        )
        assert scraped.series("memo_total") == []  # not known: left out, not reported stale

        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_start)))
        proxy.restore()
        restored = time.monotonic()
        wait_for(lambda: client.get("/memos/").status_code == 200, scaled(10), "memos again")
        recovery = time.monotonic() - restored
        writer.stop()
        print(f"{fault}: recovered {recovery:.2f}s after the restore")

    assert writer.unexpected == [], processes.log("postgres-faults")
    failed_updates = [token for token, status in writer.updates if status == 503]
    assert writer.failed or failed_updates, "the outage failed no write: it did not happen"
    assert recovery < 2 * DB_TIMEOUT + scaled(1.0)
    assert client.get("/health").json()["status"] == "healthy"

    stored = rows(postgres_url)
    created = {memo_id: row for memo_id, row in stored.items() if memo_id not in before}
    tokens = {title for title, _ in created.values()}
    assert all(title == content for title, content in stored.values() if title[0] in "wu")
    # Every acknowledged create is there; a failed one is there only if its COMMIT reached the
    # server and the answer was lost (one in-flight write at most for the one fault).
    assert writer.acknowledged <= tokens
    in_doubt = writer.failed & tokens
    assert len(in_doubt) <= 1, in_doubt
    assert tokens == writer.acknowledged | in_doubt
    # The rewritten memo holds the last acknowledged update, or a later in-doubt one.
    last_ok = max(i for i, (_, status) in enumerate(writer.updates) if status == 200)
    assert stored[target][0] in {token for token, _ in writer.updates[last_ok:]}
    print(
        f"{fault}: {len(writer.acknowledged)} creates acknowledged, {len(writer.failed)} refused,"
        f" {len(in_doubt)} of those committed all the same; {len(failed_updates)} updates refused"
    )

    after = Scrape(client.get("/metrics").text)
    assert after.value("memo_total") == len(stored)


def test_a_partition_right_after_a_response_drops_nothing_on_the_connection(
    service: tuple[httpx.Client, FaultProxy],
) -> None:
    """FastAPI closes a request's database session after the response is sent, and closing it
    rolls back the read's transaction. When the database is cut off right then, that rollback
    fails a second later: the failure must not close the client's keep-alive connection, and
    with it the next request, which uvicorn is already serving on it."""
    client, proxy = service
    memo_id = client.post("/memos/", json={"title": "read", "content": "me"}).json()["id"]
    proxy.latency(0.15)  # the rollback is still on its way when the response arrives

    def slow_body() -> Iterator[bytes]:  # the next request is still arriving when it fails
        for part in (b'{"title": ', b'"during the', b" rollback", b'"}'):
            time.sleep(DB_TIMEOUT / 2.5)
            yield part

    try:
        assert client.get(f"/memos/{memo_id}").status_code == 200
        proxy.blackhole()
        response = client.put(f"/memos/{memo_id}", content=slow_body(), headers=JSON)
        assert_unavailable(response)  # answered: the database is away, and the connection is up
    finally:
        proxy.restore()
    wait_for(lambda: client.get(f"/memos/{memo_id}").status_code == 200, scaled(10), "memos")
