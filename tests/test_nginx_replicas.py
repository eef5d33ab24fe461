"""nginx balancing over app replicas, as compose runs it after `--scale fastapi=3`.

Debian's nginx runs the project's own config (only listen ports, the resolver and the app's port
rewritten); the name `fastapi` resolves, through a real DNS server (dnsmasq), to three real app
processes on 127.0.0.2-4, as Docker's DNS answers with one address per replica. Which replica
served what is read from each replica's own /metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.dns_server import Dnsmasq
from tests.helpers import scrape
from tests.nginx_site import NginxSite, listen_ports, start_nginx
from tests.servers import Processes, free_port, start_service

pytestmark = pytest.mark.e2e

REPLICAS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
PUBLIC, DEVELOPMENT = 8080, 8000  # the project's listen ports (nginx/conf.d, nginx/dev.d)
REQUESTS = 90


@dataclass
class Balanced:
    nginx: NginxSite
    replicas: dict[str, str]  # address -> base URL
    processes: Processes


def served(replica: str) -> float:
    """Requests this replica counted for GET /memos/ (its own /metrics, read directly)."""
    with httpx.Client(base_url=replica, timeout=5) as client:
        value = scrape(client).value(
            "fastapi_requests_total", method="GET", endpoint="/memos/", status_code="200"
        )
    return value or 0.0


@pytest.fixture
def balanced(processes: Processes, sqlite_url: str) -> Iterator[Balanced]:
    app_port = free_port()
    replicas = {
        address: start_service(
            processes, f"app-{address}", {"DATABASE_URL": sqlite_url}, host=address, port=app_port
        )
        for address in REPLICAS
    }
    dns = Dnsmasq(processes, "127.0.0.1", free_port())
    dns.start({"fastapi": list(REPLICAS)})
    ports = {port: free_port() for port in listen_ports()}
    nginx = start_nginx(
        processes,
        host="127.0.0.1",
        ports=ports,
        resolver=f"127.0.0.1:{dns.port}",
        app_port=app_port,
    )
    yield Balanced(nginx, replicas, processes)


@pytest.mark.parametrize("port", [PUBLIC, DEVELOPMENT])
def test_requests_spread_over_every_replica(balanced: Balanced, port: int) -> None:
    before = {address: served(url) for address, url in balanced.replicas.items()}
    with httpx.Client(base_url=balanced.nginx.url(port), timeout=10) as client:
        statuses = [client.get("/memos/").status_code for _ in range(REQUESTS)]
    assert statuses == [200] * REQUESTS
    counts = {address: served(url) - before[address] for address, url in balanced.replicas.items()}
    assert sum(counts.values()) == REQUESTS
    # Round-robin per nginx worker: every replica gets a fair share, none is left out.
    assert all(count >= REQUESTS / len(REPLICAS) / 2 for count in counts.values()), counts


def test_metrics_only_on_the_development_port(balanced: Balanced) -> None:
    assert httpx.get(f"{balanced.nginx.url(PUBLIC)}/metrics").status_code == 404
    response = httpx.get(f"{balanced.nginx.url(DEVELOPMENT)}/metrics")
    assert response.status_code == 200
    assert "fastapi_requests_total" in response.text


def test_a_stopped_replica_is_skipped(balanced: Balanced) -> None:
    stopped = REPLICAS[0]
    balanced.processes.stop(f"app-{stopped}")
    with httpx.Client(base_url=balanced.nginx.url(PUBLIC), timeout=10) as client:
        statuses = [client.get("/memos/").status_code for _ in range(REQUESTS)]
    # The resolver still names the stopped replica; nginx moves on to the next address when
    # the connection is refused, so no request fails.
    assert statuses == [200] * REQUESTS
    # How nginx shares the stopped replica's turns between the others varies from run to run
    # (once 69 and 21): each live one keeps at least the bound the spread test uses.
    counts = {address: served(balanced.replicas[address]) for address in REPLICAS[1:]}
    assert all(count >= REQUESTS / len(REPLICAS) / 2 for count in counts.values()), counts
