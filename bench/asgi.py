"""Calling an ASGI app in-process, as a server would, without a socket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]


def get_scope(path: str, method: str = "GET") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }


async def request(
    app: ASGIApp, path: str, method: str = "GET", json_body: bytes | None = None
) -> tuple[int, bytes]:
    """The status and whole body of one request; `json_body` is sent as application/json."""
    status, chunks = 0, []
    scope = get_scope(path, method)
    if json_body is not None:
        scope["headers"] = [
            *scope["headers"],
            (b"content-type", b"application/json"),
            (b"content-length", str(len(json_body)).encode()),
        ]

    async def receive() -> Message:
        return {"type": "http.request", "body": json_body or b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)
