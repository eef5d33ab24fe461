"""The memo API against SQLite and the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_client


@pytest.fixture
def api(database_url: str) -> Iterator[TestClient]:
    with make_client(database_url) as client:
        yield client


def create(api: TestClient, **fields: object) -> dict[str, object]:
    body = {"title": "title", "content": "content", **fields}
    response = api.post("/memos/", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_returns_the_memo_with_defaults(api: TestClient) -> None:
    memo = create(api, title="Meeting", content="Room 301")
    assert memo["title"] == "Meeting"
    assert memo["tags"] == []
    assert memo["priority"] == 2
    assert memo["is_archived"] is False and memo["is_favorite"] is False
    assert memo["category"] is None and memo["author"] is None
    assert isinstance(memo["id"], int)
    assert str(memo["created_at"]).endswith("Z") or "+00:00" in str(memo["created_at"])


def test_get_update_delete_round_trip(api: TestClient) -> None:
    memo = create(api, tags=["club", "study"], priority=4, category="events", author="kim")
    memo_id = memo["id"]
    assert api.get(f"/memos/{memo_id}").json() == memo

    updated = api.put(f"/memos/{memo_id}", json={"title": "New", "is_favorite": True})
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["title"] == "New" and body["is_favorite"] is True
    assert body["content"] == memo["content"] and body["tags"] == ["club", "study"]
    assert body["updated_at"] >= memo["updated_at"]

    assert api.delete(f"/memos/{memo_id}").status_code == 204
    missing = api.get(f"/memos/{memo_id}")
    assert missing.status_code == 404
    assert str(memo_id) in missing.json()["detail"]


def test_missing_memo_is_404_for_every_verb(api: TestClient) -> None:
    assert api.get("/memos/999").status_code == 404
    assert api.put("/memos/999", json={"title": "x"}).status_code == 404
    assert api.delete("/memos/999").status_code == 404


def test_empty_update_is_400(api: TestClient) -> None:
    memo = create(api)
    response = api.put(f"/memos/{memo['id']}", json={})
    assert response.status_code == 400
    assert "No fields" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": "c"}, "title"),
        ({"title": "", "content": "c"}, "title"),
        ({"title": "x" * 101, "content": "c"}, "title"),
        ({"title": "t", "content": ""}, "content"),
        ({"title": "t", "content": "c", "priority": 5}, "priority"),
        ({"title": "t", "content": "c", "priority": 0}, "priority"),
        ({"title": "t", "content": "c", "category": "x" * 51}, "category"),
        ({"title": "t", "content": "c", "author": "x" * 101}, "author"),
        ({"title": "t", "content": "c", "tags": "not-a-list"}, "tags"),
        ({"title": "t", "content": "c", "colour": "red"}, "colour"),
    ],
)
def test_invalid_input_is_422_naming_the_field(
    api: TestClient, body: dict[str, object], field: str
) -> None:
    response = api.post("/memos/", json=body)
    assert response.status_code == 422
    locations = [error["loc"] for error in response.json()["detail"]]
    assert any(field in location for location in locations), locations


def test_update_cannot_null_a_required_field(api: TestClient) -> None:
    memo = create(api)
    response = api.put(f"/memos/{memo['id']}", json={"title": None})
    assert response.status_code == 422
    assert "title" in response.text
    assert api.get(f"/memos/{memo['id']}").json()["title"] == "title"


def test_list_is_newest_first_and_paginated(api: TestClient) -> None:
    ids = [create(api, title=f"memo {i}")["id"] for i in range(5)]
    listed = [m["id"] for m in api.get("/memos/").json()]
    assert listed == list(reversed(ids))
    page = [m["id"] for m in api.get("/memos/?skip=1&limit=2").json()]
    assert page == [ids[3], ids[2]]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "skip=-1", "limit=abc"])
def test_list_bounds_are_enforced(api: TestClient, query: str) -> None:
    response = api.get(f"/memos/?{query}")
    assert response.status_code == 422
    assert query.split("=")[0] in response.text


def test_search_matches_title_or_content_case_insensitively(api: TestClient) -> None:
    create(api, title="Python study", content="weekly")
    create(api, title="Board games", content="bring PYTHON books")
    create(api, title="Nothing", content="here")
    found = api.get("/memos/search/", params={"q": "python"}).json()
    assert sorted(m["title"] for m in found) == ["Board games", "Python study"]


def test_search_treats_like_wildcards_literally(api: TestClient) -> None:
    create(api, title="100% done", content="a")
    create(api, title="1000 done", content="b")
    create(api, title="snake_case", content="c")
    create(api, title="snakeXcase", content="d")
    create(api, title="back\\slash", content="e")
    assert [m["title"] for m in api.get("/memos/search/", params={"q": "0%"}).json()] == [
        "100% done"
    ]
    assert [m["title"] for m in api.get("/memos/search/", params={"q": "e_c"}).json()] == [
        "snake_case"
    ]
    assert [m["title"] for m in api.get("/memos/search/", params={"q": "k\\s"}).json()] == [
        "back\\slash"
    ]


def test_search_needs_a_query(api: TestClient) -> None:
    assert api.get("/memos/search/", params={"q": ""}).status_code == 422
    assert api.get("/memos/search/").status_code == 422


def test_unicode_round_trips(api: TestClient) -> None:
    memo = create(api, title="동아리 회의 🎉", content="내용", tags=["한글"])
    assert api.get(f"/memos/{memo['id']}").json()["title"] == "동아리 회의 🎉"
    found = api.get("/memos/search/", params={"q": "회의"}).json()
    assert [m["id"] for m in found] == [memo["id"]]
