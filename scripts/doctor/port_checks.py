"""The documented host ports: free, or held by the service that belongs there."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from scripts.doctor.rows import FAIL, OK, Config, Row
from scripts.doctor.sockets import Listener, PortTable

PROBE_TIMEOUT = 1.0

Probe = Callable[[str, int, httpx.Client], bool]


def _url(host: str, port: int, path: str) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}{path}"


def http_probe(path: str, needle: str, *, header: str = "") -> Probe:
    """Recognises a service by a string in a response body (or in one response header)."""

    def probe(host: str, port: int, client: httpx.Client) -> bool:
        response = client.get(_url(host, port, path), timeout=PROBE_TIMEOUT)
        return needle in (response.headers.get(header, "") if header else response.text)

    return probe


def _exchange(host: str, port: int, request: bytes, size: int) -> bytes:
    with socket.create_connection((host, port), timeout=PROBE_TIMEOUT) as connection:
        connection.sendall(request)
        return connection.recv(size)


def postgres_probe(host: str, port: int, client: httpx.Client) -> bool:
    """PostgreSQL answers an SSLRequest with one byte, S or N."""
    return _exchange(host, port, b"\x00\x00\x00\x08\x04\xd2\x16\x2f", 1) in (b"S", b"N")


def redis_probe(host: str, port: int, client: httpx.Client) -> bool:
    return _exchange(host, port, b"PING\r\n", 64).startswith((b"+PONG", b"-NOAUTH"))


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    label: str
    probe: Probe
    published_by: str = ""  # the docker-compose.yml service that publishes `port` on the host


SERVICES = (
    # The app publishes no port (it runs as replicas): nginx's development server publishes 8000.
    Service("app", 8000, "the app", http_probe("/health", '"services"'), "nginx"),
    Service("prometheus", 9090, "Prometheus", http_probe("/-/healthy", "Prometheus"), "prometheus"),
    Service("grafana", 3001, "Grafana", http_probe("/api/health", '"database"'), "grafana"),
    Service(
        "alertmanager",
        9093,
        "Alertmanager",
        http_probe("/api/v2/status", '"versionInfo"'),
        "alertmanager",
    ),
    Service("postgres", 5432, "PostgreSQL", postgres_probe, "postgres"),
    Service("redis", 6381, "Redis", redis_probe, "redis"),
    Service("nginx", 8080, "nginx", http_probe("/", "nginx", header="server"), "nginx"),
    Service("postgres-exporter", 9187, "postgres-exporter", http_probe("/metrics", "pg_up")),
    Service("redis-exporter", 9121, "redis-exporter", http_probe("/metrics", "redis_up")),
    Service("nginx-exporter", 9113, "nginx-exporter", http_probe("/metrics", "nginx_up")),
    Service(
        "node-exporter", 9100, "node-exporter", http_probe("/metrics", "node_exporter_build_info")
    ),
)


def _probe_host(held: list[Listener]) -> str:
    for item in held:
        ip = ipaddress.ip_address(item.address)
        if ip.is_unspecified or ip.is_loopback:
            return "127.0.0.1" if ip.version == 4 else "::1"
    return held[0].address


def _connectable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT).close()
    except OSError:
        return False
    return True


def _answers(service: Service, host: str, port: int, client: httpx.Client) -> bool:
    try:
        return service.probe(host, port, client)
    except (httpx.HTTPError, OSError):
        return False


def _conflict(check: str, detail: str, service: Service, port: int) -> Row:
    hint = f"port conflict: see who holds it with `sudo ss -tlnp | grep :{port}`; stop that process"
    if service.published_by:
        hint += (
            f" or change the host port {service.port} that `{service.published_by}` publishes"
            " in docker-compose.yml"
        )
    return Row(check, FAIL, detail, hint)


def check_port(
    service: Service, port: int, table: PortTable, client: httpx.Client, stack: str
) -> Row:
    """Free, or held by what belongs there. With compose, a host process (not docker's proxy)
    on a published port is a conflict even when it is the right kind of server."""
    check = f"port {port} ({service.name})"
    held = table.holders(port)
    if held is None:  # no /proc: fall back to connecting
        held = [Listener("127.0.0.1", port, 0)] if _connectable(port) else []
    if not held:
        return Row(check, OK, "free")
    who = table.describe(held)
    answers = _answers(service, _probe_host(held), port, client)
    if stack == "compose" and not service.published_by:
        what = f"answers as {service.label}" if answers else f"not {service.label}"
        return Row(check, OK, f"{who}; {what}; compose does not publish {port}")
    if stack == "compose" and table.host_process(held):
        detail = f"{who}, a host process: compose cannot publish {port} while it runs"
        return _conflict(check, detail, service, port)
    if answers:
        return Row(check, OK, f"{who}; answers as {service.label}")
    return _conflict(check, f"{who}; does not answer as {service.label}", service, port)


def check_ports(cfg: Config, client: httpx.Client) -> list[Row]:
    table = PortTable.read()
    return [check_port(s, cfg.ports[s.name], table, client, cfg.stack) for s in SERVICES]
