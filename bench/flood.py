"""The cardinality flood: N requests of which every other one hits a distinct unmatched path with a
random method and Host header; the rest alternate between the two real routes.

`python -m bench.flood PORT REQUESTS [CONNECTIONS]` prints a JSON summary. A Python client
rather than wrk, because wrk cannot stop after an exact number of requests.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
import time
from collections import Counter

# Methods the server's HTTP parser accepts; the non-standard ones become `_OTHER`.
STANDARD = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")
WEBDAV = ("PURGE", "PROPFIND", "MKCOL", "LOCK", "UNLOCK", "COPY", "MOVE", "SEARCH", "REPORT")
METHODS = STANDARD + WEBDAV


def request_line(i: int, rng: random.Random) -> tuple[str, bytes]:
    """The method and raw bytes of request number `i`."""
    if i % 2 == 0:
        path = "/ping" if i % 4 == 0 else f"/items/{i % 1000}"
        method, host = "GET", "127.0.0.1"
    else:
        method = rng.choice(METHODS)
        path = f"/flood/{i}/{rng.randrange(10**9)}"
        host = f"h{rng.randrange(10**9)}.example"
    return method, f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def read_response(reader: asyncio.StreamReader, head: bool) -> int:
    header = await reader.readuntil(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length and not head:
        await reader.readexactly(length)
    return int(lines[0].split()[1])


async def connection(
    port: int, numbers: itertools.count[int], total: int, seen: Counter[str]
) -> None:
    rng = random.Random()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (i := next(numbers)) < total:
            method, raw = request_line(i, rng)
            writer.write(raw)
            status = await read_response(reader, head=method == "HEAD")
            seen[f"{status // 100}xx"] += 1
    finally:
        writer.close()


async def flood(port: int, total: int, connections: int) -> dict[str, object]:
    numbers, seen = itertools.count(), Counter[str]()
    start = time.perf_counter()
    await asyncio.gather(*(connection(port, numbers, total, seen) for _ in range(connections)))
    seconds = time.perf_counter() - start
    return {"requests": sum(seen.values()), "seconds": seconds, "statuses": dict(seen)}


def main(argv: list[str]) -> None:
    port, total = int(argv[0]), int(argv[1])
    connections = int(argv[2]) if len(argv) > 2 else 32
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(flood(port, total, connections))))


if __name__ == "__main__":
    main(sys.argv[1:])
