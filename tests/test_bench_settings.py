"""Only a full `make bench` run publishes docs/performance.md and the README's summary."""

from __future__ import annotations

from bench.__main__ import parse_args, settings_from
from bench.settings import FULL_OUTPUTS, PARTIAL_OUTPUTS, SMOKE_OUTPUTS


def outputs(*argv: str) -> object:
    return settings_from(parse_args(list(argv))).outputs


def test_the_full_run_publishes() -> None:
    assert outputs() == FULL_OUTPUTS


def test_a_run_narrowed_in_any_way_is_kept_apart() -> None:
    for argv in (
        ["--variants", "ours"],
        ["--skip", "memory"],
        ["--rounds", "2"],
        ["--duration", "1"],
        ["--scrape-series", "1000"],
    ):
        assert outputs(*argv) == PARTIAL_OUTPUTS, argv


def test_a_smoke_run_stays_a_smoke_run() -> None:
    assert outputs("--smoke", "--variants", "ours") == SMOKE_OUTPUTS
