"""What every check shares: the stack's addresses, a result row, and reaching a service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

OK, FAIL, SKIP = "OK", "FAIL", "SKIP"
COMPOSE = "docker-compose"  # `docker compose` works the same


@dataclass(frozen=True)
class Row:
    check: str
    status: str
    detail: str
    hint: str = ""


@dataclass(frozen=True)
class Config:
    app: str
    prometheus: str
    grafana: str
    grafana_auth: tuple[str, str]
    dashboards: Path
    ports: dict[str, int]
    stack: str = "compose"


def get(client: httpx.Client, url: str, **kwargs: Any) -> httpx.Response | str:
    """The response, or why there is none."""
    try:
        return client.get(url, **kwargs)
    except httpx.HTTPError as error:
        return f"unreachable: {error or type(error).__name__}"


def json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:  # a proxy's error page, or not the service we think
        return {}
    return body if isinstance(body, dict) else {}


def service_hint(service: str) -> str:
    return f"is it running? `{COMPOSE} ps {service}`; `{COMPOSE} logs --tail=50 {service}`"
