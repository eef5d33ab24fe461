"""The Redis cache against the real Redis: read-after-write, and Redis unreachable."""

from __future__ import annotations

import socket

import redis

from tests.conftest import make_client


def test_reads_are_cached_in_redis(sqlite_url: str, redis_url: str) -> None:
    with make_client(sqlite_url, redis_url) as api:
        memo_id = api.post("/memos/", json={"title": "t", "content": "c"}).json()["id"]
        api.get(f"/memos/{memo_id}")
        api.get("/memos/")
    keys = {k.decode() for k in redis.Redis.from_url(redis_url).keys("memos:*")}
    assert any(k.endswith(f":memo:{memo_id}") for k in keys), keys
    assert any(":list:" in k for k in keys), keys


def test_a_read_after_a_write_never_sees_old_data(sqlite_url: str, redis_url: str) -> None:
    with make_client(sqlite_url, redis_url) as api:
        memo_id = api.post("/memos/", json={"title": "v0", "content": "c"}).json()["id"]
        for version in range(1, 6):
            assert api.get(f"/memos/{memo_id}").json()["title"] == f"v{version - 1}"
            assert [m["title"] for m in api.get("/memos/").json()] == [f"v{version - 1}"]
            api.put(f"/memos/{memo_id}", json={"title": f"v{version}"})
            assert api.get(f"/memos/{memo_id}").json()["title"] == f"v{version}"
            assert [m["title"] for m in api.get("/memos/").json()] == [f"v{version}"]
        api.delete(f"/memos/{memo_id}")
        assert api.get(f"/memos/{memo_id}").status_code == 404
        assert api.get("/memos/").json() == []


def test_writes_by_another_instance_are_seen(sqlite_url: str, redis_url: str) -> None:
    with make_client(sqlite_url, redis_url) as first, make_client(sqlite_url, redis_url) as second:
        memo_id = first.post("/memos/", json={"title": "old", "content": "c"}).json()["id"]
        assert second.get(f"/memos/{memo_id}").json()["title"] == "old"
        first.put(f"/memos/{memo_id}", json={"title": "new"})
        assert second.get(f"/memos/{memo_id}").json()["title"] == "new"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_redis_leaves_the_service_working(sqlite_url: str) -> None:
    with make_client(sqlite_url, f"redis://127.0.0.1:{closed_port()}/0") as api:
        created = api.post("/memos/", json={"title": "t", "content": "c"})
        assert created.status_code == 201
        memo_id = created.json()["id"]
        assert api.get(f"/memos/{memo_id}").json()["title"] == "t"
        assert api.put(f"/memos/{memo_id}", json={"title": "u"}).json()["title"] == "u"
        assert api.get(f"/memos/{memo_id}").json()["title"] == "u"
        health = api.get("/health")
        assert health.status_code == 200
        assert health.json() == {
            "status": "degraded",
            "services": {"database": "healthy", "redis": "unhealthy"},
        }
