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


def test_a_ratio_sampler_is_counted_unsampled_and_sampled_and_mixed_at_its_ratio() -> None:
    """`ours-traces-10` samples 10% (its environment says so): it is run at ratio 0 and 1, and
    its count is 0.9 of the first and 0.1 of the second; a variant without a ratio runs as is."""
    assert BY_NAME["ours-traces-10"].env["OTEL_TRACES_SAMPLER_ARG"] == "0.1"
    assert instructions._sampler_settings("ours-traces-10") == ("0", "1")
    assert instructions._sampler_settings("ours-traces") == (None,)
    total = {
        instructions._Run("ours-traces-10", "/ping", 100, "0"): 1_000_000,
        instructions._Run("ours-traces-10", "/ping", 300, "0"): 1_200_000,  # 1,000 a request
        instructions._Run("ours-traces-10", "/ping", 100, "1"): 2_000_000,
        instructions._Run("ours-traces-10", "/ping", 300, "1"): 3_000_000,  # 5,000 a request
        instructions._Run("ours", "/ping", 100, None): 500_000,
        instructions._Run("ours", "/ping", 300, None): 600_000,  # 500 a request
    }
    mixed = instructions._count(("ours-traces-10", "/ping", "bare"), list(total), total)
    assert (mixed.unsampled, mixed.sampled) == (1000, 5000)
    assert mixed.per_request == pytest.approx(0.9 * 1000 + 0.1 * 5000)
    plain = instructions._count(("ours", "/ping", "bare"), list(total), total)
    assert (plain.per_request, plain.sampled) == (500, None)
