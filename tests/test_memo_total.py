"""`memo_total` is the row count: after creates, deletes, failed deletes and restarts."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import make_client
from tests.helpers import scrape


def row_count(database_url: str) -> int:
    async def count() -> int:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                return int((await connection.execute(text("SELECT count(*) FROM memos"))).scalar())
        finally:
            await engine.dispose()

    return asyncio.run(count())


def test_memo_total_follows_the_table(database_url: str) -> None:
    with make_client(database_url) as api:
        assert scrape(api).value("memo_total") == 0
        ids = [
            api.post("/memos/", json={"title": f"{i}", "content": "c"}).json()["id"]
            for i in range(4)
        ]
        assert scrape(api).value("memo_total") == 4
        api.delete(f"/memos/{ids[0]}")
        assert api.delete(f"/memos/{ids[0]}").status_code == 404
        assert api.delete("/memos/424242").status_code == 404
        api.post("/memos/", json={"title": ""})  # refused, nothing stored
        assert scrape(api).value("memo_total") == 3 == row_count(database_url)

    with make_client(database_url) as restarted:
        assert scrape(restarted).value("memo_total") == 3


def test_memo_total_sees_rows_written_by_another_process(sqlite_url: str) -> None:
    with make_client(sqlite_url) as first, make_client(sqlite_url) as second:
        first.post("/memos/", json={"title": "a", "content": "b"})
        first.post("/memos/", json={"title": "a", "content": "b"})
        assert scrape(second).value("memo_total") == 2
