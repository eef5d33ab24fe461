"""Fault tests: the real service as a process, its servers behind proxies the test controls.

The fixtures are module-scoped, so that the tests of a module share one service (a start costs
about two seconds) and the suite stays quick.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.faults.proxy import FaultProxy
from tests.faults.support import empty_redis_database, fresh_postgres_database
from tests.servers import Processes


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    running = Processes(tmp_path_factory.mktemp("processes"))
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="module")
def proxy_to() -> Iterator[Callable[[int], FaultProxy]]:
    """Starts a FaultProxy in front of 127.0.0.1:PORT; every one is closed at the end."""
    started: list[FaultProxy] = []

    def start(port: int) -> FaultProxy:
        proxy = FaultProxy("127.0.0.1", port).start()
        started.append(proxy)
        return proxy

    try:
        yield start
    finally:
        for proxy in started:
            proxy.close()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database("memo_faults") as url:
        yield url


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with empty_redis_database() as url:
        yield url
