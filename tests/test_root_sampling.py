"""`otel.traces.sampling.root_decision` against the SDK's samplers: the oracle is each sampler's
own `should_sample` on the same trace ids, for every sampler OTEL_TRACES_SAMPLER names."""

from __future__ import annotations

import random

import pytest
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    StaticSampler,
    TraceIdRatioBased,
    _get_from_env_or_default,
)

from otel.traces.sampling import root_decision

ENVIRONMENT = [
    ("always_on", None),
    ("always_off", None),
    ("parentbased_always_on", None),
    ("parentbased_always_off", None),
    ("traceidratio", "0"),
    ("traceidratio", "0.1"),
    ("traceidratio", "0.5"),
    ("traceidratio", "1"),
    ("parentbased_traceidratio", "0"),
    ("parentbased_traceidratio", "0.1"),
    ("parentbased_traceidratio", "0.999"),
]


def from_environment(name: str, argument: str | None, monkeypatch: pytest.MonkeyPatch) -> Sampler:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", name)
    if argument is None:
        monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    else:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", argument)
    sampler: Sampler = _get_from_env_or_default()
    return sampler


def trace_ids(sampler: Sampler) -> list[int]:
    """Random ids, and ids on each side of a ratio sampler's bound (high bits set too)."""
    generator = random.Random(20261203)
    ids = [generator.getrandbits(128) for _ in range(5000)]
    root = getattr(sampler, "_root", sampler)
    if isinstance(root, TraceIdRatioBased):
        for bound in (root.bound - 1, root.bound, root.bound + 1):
            ids += [bound & root.TRACE_ID_LIMIT, (7 << 64) | (bound & root.TRACE_ID_LIMIT)]
    return [trace_id for trace_id in ids if trace_id]


@pytest.mark.parametrize(("name", "argument"), ENVIRONMENT)
def test_the_same_decision_as_the_sampler_for_a_new_trace(
    name: str, argument: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sampler = from_environment(name, argument, monkeypatch)
    decide = root_decision(sampler)
    assert decide is not None, f"{name} should be decided without asking it"
    ids = trace_ids(sampler)
    expected = [sampler.should_sample(None, i, "GET").decision.is_sampled() for i in ids]
    assert [decide(i) for i in ids] == expected
    if argument not in (None, "0", "1"):
        assert 0 < sum(expected) < len(ids)  # the ratio cases really exercise both answers


class Overridden(TraceIdRatioBased):
    def should_sample(self, *args: object, **kwargs: object) -> SamplingResult:
        return SamplingResult(Decision.DROP)


class Custom(Sampler):
    def should_sample(self, *args: object, **kwargs: object) -> SamplingResult:
        return SamplingResult(Decision.RECORD_AND_SAMPLE)

    def get_description(self) -> str:
        return "custom"


@pytest.mark.parametrize(
    "sampler",
    [
        Overridden(0.5),
        Custom(),
        ParentBased(Custom()),
        ParentBased(Overridden(1.0)),
        StaticSampler(Decision.RECORD_ONLY),
    ],
    ids=["overridden", "custom", "parent-based custom", "parent-based overridden", "record only"],
)
def test_any_other_sampler_is_asked(sampler: Sampler) -> None:
    assert root_decision(sampler) is None


def test_a_parent_based_sampler_decides_a_root_by_its_root_sampler() -> None:
    sampler = ParentBased(StaticSampler(Decision.DROP), remote_parent_sampled=ALWAYS_ON)
    decide = root_decision(sampler)
    assert decide is not None and decide(1) is False
