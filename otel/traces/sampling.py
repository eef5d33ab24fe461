"""The sampling decision for a new trace, without asking the sampler, for the SDK's own samplers.

Asking the SDK's sampler costs about 2.5 us per request (a current-span lookup, the parent's
trace state, a `SamplingResult`), and at a 10% ratio nine requests in ten pay it only to learn
that they are dropped. For a span without a parent, the samplers OTEL_TRACES_SAMPLER names
decide by the trace id alone: `always_on`/`always_off` by a fixed decision, `traceidratio` by
comparing the id's low 64 bits with a bound, and the `parentbased_*` ones by their root sampler.
Any other sampler, and any overridden `should_sample`, is asked as usual.
`tests/test_root_sampling.py` checks the decisions against the samplers themselves.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    StaticSampler,
    TraceIdRatioBased,
)

RootDecision = Callable[[int], bool]


def root_decision(sampler: Sampler) -> RootDecision | None:
    """Whether a new trace with this id is sampled, as `sampler` decides it; None: ask it."""
    if _own(sampler, ParentBased):
        sampler = sampler._root  # type: ignore[attr-defined]  # private: test_sdk_internals
    if _own(sampler, StaticSampler):
        decision = sampler._decision  # type: ignore[attr-defined]
        if decision is Decision.RECORD_ONLY:
            return None  # recorded but not sampled: the general path builds that span
        sampled = decision is Decision.RECORD_AND_SAMPLE
        return lambda trace_id: sampled
    if _own(sampler, TraceIdRatioBased):
        limit, bound = sampler.TRACE_ID_LIMIT, sampler.bound  # type: ignore[attr-defined]
        return lambda trace_id: trace_id & limit < bound
    return None


def _own(sampler: Sampler, kind: type[Sampler]) -> bool:
    """`sampler` is a `kind` whose decision is the SDK's own (`should_sample` not overridden)."""
    return isinstance(sampler, kind) and type(sampler).should_sample is kind.should_sample
