"""Running real servers as local processes in tests: ports, polling, and clean stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def require_server(host: str, port: int, what: str) -> None:
    """Fail in CI, skip elsewhere, when a real server the test needs is not running."""
    import pytest

    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        message = f"{what} is not reachable at {host}:{port}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must start it: see .ci/run)")
        pytest.skip(message)


def admin_sql(statement: str) -> None:
    """Run one statement on the real PostgreSQL as its administrator."""
    import asyncio

    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """A new database on the real PostgreSQL, as an asyncpg URL; dropped afterwards."""
    require_server("127.0.0.1", 5432, "PostgreSQL")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin_sql(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def empty_redis_database(url: str) -> Iterator[str]:
    """Redis database `url` on the real Redis, flushed before and after."""
    require_server("127.0.0.1", 6379, "Redis")
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll check() until it returns something truthy; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@dataclass
class Processes:
    """Processes started by the test, each in its own session, logs under `logs`."""

    logs: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], **kwargs: Any) -> None:
        with (self.logs / f"{name}.log").open("wb") as log:
            self.running[name] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
            )

    def stop(self, name: str) -> None:
        process = self.running.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def check_alive(self) -> None:
        for name, process in self.running.items():
            assert process.poll() is None, f"{name} exited:\n{self.log(name)}"


def start_service(
    processes: Processes,
    name: str,
    env: dict[str, str],
    *,
    workers: int = 1,
    access_log: bool = False,
    app: str = "service.main:app",
    host: str = "127.0.0.1",
    port: int | None = None,
    argv_prefix: Sequence[str] = (),
) -> str:
    """The memo service under uvicorn as a real process; its base URL once /health answers.

    argv_prefix runs it elsewhere (for example `ip netns exec NAME`)."""
    port = port or free_port()
    argv = [*argv_prefix, sys.executable, "-m", "uvicorn", app, "--host", host]
    argv += ["--port", str(port), "--workers", str(workers)]
    argv += [] if access_log else ["--no-access-log"]
    processes.start(name, argv, cwd=ROOT, env={**os.environ, **env})
    url = f"http://{host}:{port}"

    def healthy() -> bool:
        processes.check_alive()
        return httpx.get(f"{url}/health", timeout=2).status_code == 200

    wait_for(healthy, 30, f"{name} answering /health")
    return url


def start_prometheus(processes: Processes, config: dict[str, Any], *flags: str) -> str:
    """A real Prometheus (Debian's package) on a free port with `config`; its URL once ready."""
    import shutil

    import yaml

    binary = shutil.which("prometheus")
    if binary is None:
        raise AssertionError("prometheus is not installed (apt-get install prometheus)")
    path = processes.logs / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    argv = [binary, f"--config.file={path}", f"--web.listen-address={address}"]
    argv += [f"--storage.tsdb.path={processes.logs / 'tsdb'}", "--log.level=warn", *flags]
    processes.start("prometheus", argv)

    def ready() -> bool:
        processes.check_alive()
        return httpx.get(f"http://{address}/-/ready", timeout=2).status_code == 200

    wait_for(ready, 30, "prometheus ready")
    return f"http://{address}"
