"""Route templates for the `endpoint` label, including the prefixes of mounts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Mount
from starlette.types import Scope

from otel.metrics.contract import UNMATCHED_ENDPOINT


class RouteTemplates:
    """Maps the route Starlette matched to its full template, e.g. ``/api/memos/{memo_id}``.

    Starlette records only the innermost matched route in the scope, without the prefixes of the
    mounts above it, and FastAPI records no route at all for plain Starlette routes such as
    `/openapi.json` (only their endpoint). So the full templates are computed once from the route
    tree, by route and by endpoint, and looked up; the tree is walked again when a route added
    later is met.
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._templates: dict[int, str] = {}

    def endpoint(self, scope: Scope) -> str:
        key = scope.get("route") or scope.get("endpoint")
        if key is None:
            return UNMATCHED_ENDPOINT
        template = self._templates.get(id(key))
        if template is None:
            self._templates = dict(_walk(getattr(self._app, "routes", ()), ""))
            template = self._templates.get(id(key))
            if template is None:
                template = _own_template(key) if "route" in scope else UNMATCHED_ENDPOINT
            self._templates[id(key)] = template
        return template


def _walk(routes: Iterable[BaseRoute], prefix: str) -> Iterable[tuple[int, str]]:
    for route in routes:
        template = prefix + _own_template(route)
        yield id(route), template
        if (endpoint := getattr(route, "endpoint", None)) is not None:
            yield id(endpoint), template
        if isinstance(route, Mount):
            yield from _walk(route.routes, prefix + route.path)


def _own_template(route: Any) -> str:
    return str(getattr(route, "path_format", None) or getattr(route, "path", UNMATCHED_ENDPOINT))
