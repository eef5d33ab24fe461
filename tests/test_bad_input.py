"""Bad input against the real service (uvicorn, PostgreSQL, Redis): nothing a client sends gets a
5xx or a response outside the published schema, oversized bodies are refused early, and a flood
of junk requests leaves the metric series and the memory bounded.
"""

from __future__ import annotations

import asyncio
import json
import random
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from otel.metrics.contract import OTHER_METHOD, STANDARD_METHODS, UNMATCHED_ENDPOINT
from tests.faults.support import (
    SOAK,
    empty_redis_database,
    fresh_postgres_database,
    rss_kib,
    scaled,
)
from tests.helpers import Scrape
from tests.servers import Processes, start_service

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

MAX_BODY = 64 * 1024  # MAX_BODY_BYTES for the service under test: small, so the tests are quick
# The property-based run: at most this many generated cases per API operation and mode.
CASES_PER_OPERATION = 1000 if SOAK else 50
FLOOD_REQUESTS = 200_000 if SOAK else 20_000


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on a fresh PostgreSQL database and Redis database 12."""
    processes = Processes(tmp_path_factory.mktemp("bad-input"))
    with fresh_postgres_database("memo_bad_input") as database_url, empty_redis_database() as redis:
        env = {"DATABASE_URL": database_url, "REDIS_URL": redis, "MAX_BODY_BYTES": str(MAX_BODY)}
        try:
            yield start_service(processes, "bad-input", env)
        finally:
            processes.stop_all()


@pytest.fixture(scope="module")
def client(service: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service, timeout=30) as api:
        yield api


# --- the property-based run -----------------------------------------------------------------------


def check_operation(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode) -> int:
    """Runs the generated cases of one operation; returns how many there were."""
    cases = 0

    @settings(
        max_examples=CASES_PER_OPERATION,
        deadline=None,
        database=None,  # no .hypothesis directory in the work tree
        derandomize=not SOAK,  # the same cases on every `make test`; new ones in `make soak`
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        nonlocal cases
        cases += 1
        case.call_and_validate()

    run()
    return cases


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=str)
def test_generated_requests_get_no_5xx_and_match_the_schema(
    service: str, mode: schemathesis.GenerationMode
) -> None:
    """Cases generated from the service's own OpenAPI schema, for every operation, checked by
    every built-in check of schemathesis: no 5xx; status codes, content types, headers and bodies
    as documented; valid input accepted (positive mode), invalid input refused with a 4xx
    (negative mode). Up to CASES_PER_OPERATION cases per operation and mode (50 in `make test`:
    6 operations with input x 50 x 2 modes + 1 for /health = 601 cases)."""
    schema = schemathesis.openapi.from_url(f"{service}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7
    counts = {
        operation.label: check_operation(operation, mode)
        for operation in operations
        # an operation without input has no invalid request to generate
        if mode == schemathesis.GenerationMode.POSITIVE
        or next(operation.iter_parameters(), None) is not None
        or len(operation.body)
    }
    print(f"{mode}: {sum(counts.values())} generated cases: {counts}")
    assert all(
        n >= CASES_PER_OPERATION // 2 for label, n in counts.items() if "health" not in label
    )


# --- oversized bodies -----------------------------------------------------------------------------


def raw_request(service: str, head: str) -> socket.socket:
    host, port = service.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head.encode())
    return sock


def read_status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "closed without a response"
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_a_declared_oversized_body_is_refused_before_any_of_it_is_sent(service: str) -> None:
    declared = 1024 * 1024 * 1024  # a gigabyte, of which nothing is sent
    with raw_request(
        service,
        "POST /memos/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n",
    ) as sock:
        assert read_status(sock) == 413


def test_a_chunked_oversized_body_is_refused_once_past_the_limit(service: str) -> None:
    """The body is streamed in chunks with no length declared; the 413 arrives while the client
    is still sending, and the server stops reading: the rest is never taken in."""
    chunk = b"x" * 16384
    total = 256 * 1024 * 1024
    sent = 0
    with raw_request(
        service,
        "POST /memos/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
    ) as sock:
        sock.setblocking(False)
        answered = False
        while sent < total and not answered:
            readable, writable, _ = select.select([sock], [sock], [], 5)
            if readable:
                answered = True
            elif writable:
                try:
                    sent += sock.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except BlockingIOError:
                    continue
            else:
                break  # neither: the server stopped reading and has not answered
        sock.setblocking(True)
        assert answered, f"no answer after {sent} bytes"
        assert read_status(sock) == 413
    print(f"413 after {sent / 1024:.0f} KiB sent of a {total // 1024 // 1024} MiB body")
    # What was sent is the limit plus what the two socket buffers hold, not the whole body.
    assert sent < 16 * 1024 * 1024


def test_bodies_at_and_just_over_the_limit(client: httpx.Client) -> None:
    envelope = len(json.dumps({"title": "t", "content": ""}))
    fits = {"title": "t", "content": "c" * (MAX_BODY - envelope)}
    assert len(json.dumps(fits)) == MAX_BODY
    assert client.post("/memos/", content=json.dumps(fits), headers=JSON).status_code == 201
    over = {"title": "t", "content": "c" * (MAX_BODY - envelope + 1)}
    response = client.post("/memos/", content=json.dumps(over), headers=JSON)
    assert response.status_code == 413
    assert response.json() == {"detail": f"Request body larger than {MAX_BODY} bytes"}
    streamed = client.post("/memos/", content=iter([b"{", b" " * MAX_BODY, b"}"]), headers=JSON)
    assert streamed.status_code == 413


# --- malformed and ill-typed bodies ---------------------------------------------------------------

JSON = {"Content-Type": "application/json"}
VALID = {"title": "t", "content": "c"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b'{"title": "t", "content": "c"', 422, id="truncated"),
        pytest.param(b"not json", 422, id="not-json"),
        pytest.param(b'{"title": "t", "content": "c"} trailing', 422, id="trailing-garbage"),
        pytest.param(b"", 422, id="empty"),
        pytest.param(b"[]", 422, id="array"),
        pytest.param(b"null", 422, id="null"),
        pytest.param(b'{"title": NaN, "content": "c"}', 422, id="nan"),
        pytest.param(b"[" * 20_000 + b"]" * 20_000, 400, id="deeply-nested"),
        pytest.param(b'{"title": "t", "content": "c", "priority": 1' + b"0" * 5000 + b"}", 400,
                     id="5000-digit-number"),
        pytest.param(b'{"title": "\xff\xfe", "content": "c"}', 400, id="invalid-utf8"),
        pytest.param(b'\xef\xbb\xbf{"title": "t", "content": "c"}', 201, id="utf8-bom"),
        pytest.param(b'{"title": "a\\u0000b", "content": "c"}', 422, id="nul-escape"),
        pytest.param(b'{"title": "a\\ud800b", "content": "c"}', 422, id="lone-surrogate"),
        pytest.param(b'{"title": "t", "title": "u", "content": "c"}', 201, id="duplicate-key"),
    ],
)  # fmt: skip
def test_malformed_json_is_a_4xx(client: httpx.Client, body: bytes, status: int) -> None:
    response = client.post("/memos/", content=body, headers=JSON)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "fields",
    [
        {"title": 123},
        {"title": None},
        {"title": ["t"]},
        {"content": {"a": 1}},
        {"priority": "2"},
        {"priority": True},
        {"priority": 2.5},
        {"priority": 5},
        {"priority": 10**30},
        {"is_favorite": 0},
        {"is_favorite": "true"},
        {"tags": "a,b"},
        {"tags": [1, 2]},
        {"tags": [""]},
        {"tags": ["t"] * 51},
        {"title": "x" * 101},
        {"category": "c" * 51},
        {"id": 5},
        {"created_at": "2020-01-01T00:00:00Z"},
        {"unknown": "field"},
    ],
    ids=repr,
)
def test_wrong_types_and_values_are_422(client: httpx.Client, fields: dict[str, Any]) -> None:
    response = client.post("/memos/", json={**VALID, **fields})
    assert response.status_code == 422, response.text
    memo_id = client.post("/memos/", json=VALID).json()["id"]
    if set(fields) - {"id", "created_at", "unknown"} and fields != {"title": None}:
        assert client.put(f"/memos/{memo_id}", json=fields).status_code == 422


def test_wrong_content_type_is_422(client: httpx.Client) -> None:
    response = client.post(
        "/memos/", content=json.dumps(VALID), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 422


def test_integral_floats_are_integers(client: httpx.Client) -> None:
    """JSON Schema's integer takes 2.0, so the service does too."""
    response = client.post("/memos/", json={**VALID, "priority": 2.0})
    assert response.status_code == 201 and response.json()["priority"] == 2


# --- query and path parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/memos/?limit=0",
        "/memos/?limit=101",
        "/memos/?limit=99999999999999999999999999",
        "/memos/?limit=-1",
        "/memos/?limit=1e3",
        "/memos/?limit=ten",
        "/memos/?skip=-1",
        "/memos/?skip=1000001",
        "/memos/?skip=99999999999999999999999999",
        "/memos/0",
        "/memos/-1",
        "/memos/2147483648",
        "/memos/99999999999999999999999999",
        "/memos/1.5",
        "/memos/abc",
        "/memos/search/",
        "/memos/search/?q=",
        "/memos/search/?q=" + "x" * 201,
        "/memos/search/?q=a%00b",
        "/memos/search/?q=a&limit=1000",
    ],
)
def test_out_of_range_parameters_are_422(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/memos/", "GET, POST"),
        ("PATCH", "/memos/1", "DELETE, GET, PUT"),
        ("DELETE", "/memos/search/", "GET"),
        ("POST", "/health", "GET"),
    ],
)
def test_a_wrong_method_is_405_listing_every_method_of_the_path(
    client: httpx.Client, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == {"detail": "Method Not Allowed"}


def test_largest_allowed_values_are_served(client: httpx.Client) -> None:
    assert client.get("/memos/?skip=1000000&limit=100").json() == []
    assert client.get("/memos/2147483647").status_code == 404
    assert client.delete("/memos/2147483647").status_code == 404


# --- text: Unicode, SQL-like strings, LIKE wildcards ----------------------------------------------

UNICODE = [
    "한국어 메모",
    "emoji 🎉👩‍💻🏳️‍🌈",
    "مرحبا بالعالم",  # right to left
    "e\u0301 vs \u00e9",  # combining accent vs precomposed
    "zero\u200bwidth",
    "\U0001f600" * 100,  # 100 code points, 400 bytes: the title's limit counts characters
    "tab\tnew\nline",
]
SQL_LIKE = [
    "'; DROP TABLE memos; --",
    "' OR '1'='1",
    '"; SELECT pg_sleep(30); --',
    "1; UPDATE memos SET title = 'pwned'",
    "$1 $$ \\x00 E'\\n'",
]


@pytest.mark.parametrize("text", UNICODE + SQL_LIKE)
def test_text_round_trips_exactly_and_is_found_by_search(client: httpx.Client, text: str) -> None:
    created = client.post("/memos/", json={"title": text, "content": text, "tags": [text[:50]]})
    assert created.status_code == 201, created.text
    memo = created.json()
    assert (memo["title"], memo["content"], memo["tags"]) == (text, text, [text[:50]])
    assert client.get(f"/memos/{memo['id']}").json() == memo
    started = time.monotonic()
    found = client.get("/memos/search/", params={"q": text, "limit": 100}).json()
    assert time.monotonic() - started < scaled(2)  # pg_sleep was not run
    assert memo["id"] in {m["id"] for m in found}
    assert all(text.lower() in (m["title"] + m["content"]).lower() for m in found)
    assert "pwned" not in {m["title"] for m in client.get("/memos/?limit=100").json()}


def test_a_title_over_100_characters_is_422_however_few_bytes(client: httpx.Client) -> None:
    assert client.post("/memos/", json={"title": "é" * 101, "content": "c"}).status_code == 422


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("%", {"50% off"}),
        ("_", {"snake_case"}),
        ("\\", {"back\\slash"}),
        ("%_", set()),
        ("0% o", {"50% off"}),
        ("e_c", {"snake_case"}),
        ("k\\s", {"back\\slash"}),
        ("snakeXcase", {"snakeXcase"}),
    ],
)
def test_like_wildcards_in_search_match_themselves(
    client: httpx.Client, query: str, expected: set[str]
) -> None:
    tag = f"wild{random.randrange(10**9)}"
    for title in ("50% off", "snake_case", "snakeXcase", "back\\slash", "plain"):
        client.post("/memos/", json={"title": title, "content": tag})
    found = client.get("/memos/search/", params={"q": query, "limit": 100}).json()
    assert {m["title"] for m in found if m["content"] == tag} == expected


# --- the cardinality flood ------------------------------------------------------------------------

# llhttp, uvicorn's parser, accepts these methods besides the standard ones; others it refuses
# with a 400 before the app is called.
EXTRA_METHODS = ["PROPFIND", "MKCOL", "PURGE", "LOCK", "REPORT", "SEARCH", "MKCALENDAR"]
FLOOD_METHODS = sorted(STANDARD_METHODS - {"CONNECT"}) + EXTRA_METHODS + ["FOO", "X-JUNK"]
# Every status the service can send: the third factor of the bound.
STATUSES = {200, 201, 204, 307, 400, 404, 405, 413, 422, 500, 503}


async def _flood_connection(port: int, count: int, rng: random.Random) -> int:
    """`count` requests over keep-alive connections; reconnects when the server closes one."""
    answered = 0
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for n in range(count):
        method = rng.choice(FLOOD_METHODS)
        token = f"{rng.getrandbits(64):x}"
        path = f"/memos/{token}" if n % 10 == 0 else f"/{token}/{n}?{token}"
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: h{token}.example:{n}\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        headers = dict(
            line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if line
        )
        headers = {name.lower(): value for name, value in headers.items()}
        if method != "HEAD":
            await reader.readexactly(int(headers.get("content-length", "0")))
        answered += 1
        if headers.get("connection") == "close":
            writer.close()
            await writer.wait_closed()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    await writer.wait_closed()
    return answered


def flood(service: str, count: int, seed: int, connections: int = 8) -> int:
    port = int(service.rsplit(":", 1)[1])

    async def run() -> list[int]:
        return await asyncio.gather(
            *(
                _flood_connection(port, count // connections, random.Random(seed + i))
                for i in range(connections)
            )
        )

    return sum(asyncio.run(run()))


def family_sizes(scrape: Scrape) -> dict[str, int]:
    """Lines per fastapi_* metric family (a histogram's _bucket, _sum and _count lines count)."""
    sizes: dict[str, int] = {}
    for name, _ in scrape.samples:
        if name.startswith("fastapi_"):
            family = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
            sizes[family] = sizes.get(family, 0) + 1
    return sizes


@pytest.fixture(scope="module")
def flood_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A service of its own (SQLite, no Redis), so the flood's series are all there is."""
    tmp = tmp_path_factory.mktemp("flood")
    processes = Processes(tmp)
    try:
        url = start_service(processes, "flood", {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/m.db"})
        yield url, processes.running["flood"].pid
    finally:
        processes.stop_all()


def test_a_flood_of_junk_paths_methods_and_hosts_leaves_series_and_memory_bounded(
    flood_service: tuple[str, int],
) -> None:
    """The bound, stated: fastapi_requests_total has at most methods x (routes + 1) x statuses
    series (10 x 9 x 11 = 990 for this service), fastapi_request_duration_seconds at most
    methods x (routes + 1) series of 17 lines each (15 buckets, _sum, _count), and
    fastapi_active_connections one. None of it grows with distinct paths or Host headers."""
    url, pid = flood_service
    templates = set(httpx.get(f"{url}/openapi.json").json()["paths"])
    templates |= {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}  # not in the schema
    methods = STANDARD_METHODS | {OTHER_METHOD}
    endpoints = templates | {UNMATCHED_ENDPOINT}
    bound = {
        "fastapi_requests_total": len(methods) * len(endpoints) * len(STATUSES),
        "fastapi_request_duration_seconds": len(methods) * len(endpoints) * 17,
        "fastapi_active_connections": 1,
    }

    warm_up = FLOOD_REQUESTS // 10
    started = time.monotonic()
    assert flood(url, warm_up, seed=1) == warm_up
    rss_warm = rss_kib(pid)
    series_warm = family_sizes(Scrape(httpx.get(f"{url}/metrics").text))
    assert flood(url, FLOOD_REQUESTS - warm_up, seed=2) == FLOOD_REQUESTS - warm_up
    seconds = time.monotonic() - started
    rss_end = rss_kib(pid)
    scrape = Scrape(httpx.get(f"{url}/metrics").text)
    series = family_sizes(scrape)

    print(
        f"{FLOOD_REQUESTS} requests in {seconds:.1f}s; series after {warm_up}: {series_warm},"
        f" after all: {series}, bound: {bound}; RSS {rss_warm} KiB after the warm-up,"
        f" {rss_end} KiB at the end ({rss_end - rss_warm:+d} KiB);"
        f" methods {sorted(scrape.label_values('fastapi_requests_total', 'method'))}"
    )
    assert set(series) <= set(bound)
    assert all(series[family] <= bound[family] for family in series)
    assert scrape.label_values("fastapi_requests_total", "method") <= methods
    assert scrape.label_values("fastapi_requests_total", "endpoint") <= endpoints
    counted = {int(s) for s in scrape.label_values("fastapi_requests_total", "status_code")}
    assert counted <= STATUSES
    assert all(
        {key for key, _ in labels} <= {"method", "endpoint", "status_code", "le"}
        for name, labels in scrape.samples
        if name.startswith("fastapi_")
    )
    assert rss_end - rss_warm < 8 * 1024


def test_the_documentation_routes_are_counted_under_their_own_template(
    flood_service: tuple[str, int],
) -> None:
    """FastAPI serves /openapi.json, /docs and /redoc through plain Starlette routes, which do not
    record themselves in scope["route"] as FastAPI's APIRoutes do; the middleware then counts
    them as unmatched, against the contract ("endpoint is the route template as routed")."""
    url, _ = flood_service
    httpx.get(f"{url}/openapi.json")
    scrape = Scrape(httpx.get(f"{url}/metrics").text)
    assert "/openapi.json" in scrape.label_values("fastapi_requests_total", "endpoint")
