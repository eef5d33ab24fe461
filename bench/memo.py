"""The memo service's routes under load: a read by id and a create, and the memo they read."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from pathlib import Path

from bench.procs import BenchError
from bench.variants import MEMO_GET, MEMO_POST

POST_SCRIPT = Path(__file__).resolve().parent / "wrk" / "post_memo.lua"
MEMO_BODY = {"title": "bench", "content": "a memo written under load", "tags": ["bench", "wrk"]}


@dataclass(frozen=True)
class Request:
    """One route as wrk sends it: the path, and the script that makes it a POST, if any."""

    path: str
    script: Path | None = None


def memo_requests(port: int) -> dict[str, Request]:
    """Creates the memo the reads ask for; checks both routes answer as the API says."""
    status, body = send(port, "POST", "/memos/", json.dumps(MEMO_BODY).encode())
    if status != 201:
        raise BenchError(f"POST /memos/ answered {status}: {body[:200]!r}")
    path = f"/memos/{json.loads(body)['id']}"
    status, body = send(port, "GET", path)
    if status != 200 or json.loads(body)["title"] != MEMO_BODY["title"]:
        raise BenchError(f"GET {path} answered {status}: {body[:200]!r}")
    return {MEMO_GET: Request(path), MEMO_POST: Request("/memos/", POST_SCRIPT)}


def send(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def warm_up(port: int, requests: dict[str, Request], times: int) -> None:
    """`times` keep-alive requests per route, as wrk will send them."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps(MEMO_BODY).encode()
    try:
        for _ in range(times):
            for request in requests.values():
                if request.script is None:
                    conn.request("GET", request.path)
                else:
                    conn.request("POST", request.path, body, {"Content-Type": "application/json"})
                conn.getresponse().read()
    finally:
        conn.close()
