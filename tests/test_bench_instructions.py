"""`bench.instructions`: a route that does not answer as expected stops the count instead of
being counted, and every ratio has its base measured on the same routes."""

from __future__ import annotations

import pytest

from bench import instructions
from bench.variants import BY_NAME


def test_a_route_answering_otherwise_stops_the_count() -> None:
    with pytest.raises(SystemExit, match="GET /nowhere answered 404"):
        instructions.drive(BY_NAME["bare"].module, "/nowhere", 1)


def test_every_variant_is_measured_against_a_base_measured_on_the_same_routes() -> None:
    routes = {variant: set(routes) for variant, routes, _ in instructions.JOBS}
    for variant, _, base in instructions.JOBS:
        assert routes[variant] <= routes[base], variant
