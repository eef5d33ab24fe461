"""A local OTLP/HTTP sink: accepts POST /v1/metrics and /v1/traces, counts them, discards them.

`python -m bench.sink PORT`; `GET /stats` answers the counts as JSON.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from bench.procs import BenchError, get

OTLP_PATHS = ("/v1/metrics", "/v1/traces", "/v1/logs")


class SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the exporters expect
    # Class-level on purpose: one server, one count, shared by its handler threads.
    requests: ClassVar[Counter[str]] = Counter()
    received: ClassVar[Counter[str]] = Counter()
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path not in OTLP_PATHS:
            self._answer(404, b"", "text/plain")
            return
        with self.lock:
            self.requests[self.path] += 1
            self.received[self.path] += len(body)
        # An empty Export*ServiceResponse is a valid, fully successful answer.
        self._answer(200, b"", "application/x-protobuf")

    def do_GET(self) -> None:
        if self.path != "/stats":
            self._answer(404, b"", "text/plain")
            return
        with self.lock:
            stats = {"requests": dict(self.requests), "bytes": dict(self.received)}
        self._answer(200, json.dumps(stats).encode(), "application/json")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class SinkClient:
    """The sink process, seen from the harness."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"

    def received(self) -> dict[str, int]:
        """OTLP requests received so far, by path."""
        status, body = get(self.port, "/stats")
        if status != 200:
            raise BenchError(f"the OTLP sink answered {status}")
        requests: dict[str, int] = json.loads(body)["requests"]
        return requests


def main(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), SinkHandler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
