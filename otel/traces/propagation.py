"""A request's parent context, read from its ASGI headers by the global propagators.

`propagate.extract` costs about 2 us per request, mostly to learn that the request carries
none of the propagators' headers. The W3C propagators (the default, `tracecontext,baggage`)
leave the context alone when their header is missing, so for them a request without any of
their headers gets, without calling them, the context they would have returned. Any other
propagator, and any request carrying one of those headers, goes through `propagate.extract`.
`tests/test_request_propagation.py` compares the two with `propagate.extract`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context, get_current
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# What each W3C propagator returns, given no context, when its header is missing: the trace
# context one starts from an empty context, the baggage one from the current one.
_START_WITHOUT_HEADER: dict[type[TextMapPropagator], Callable[[], Context]] = {
    TraceContextTextMapPropagator: Context,
    W3CBaggagePropagator: get_current,
}
# The header each reads; the trace context one reads `tracestate` only beside `traceparent`.
_READS: dict[type[TextMapPropagator], bytes] = {
    TraceContextTextMapPropagator: b"traceparent",
    W3CBaggagePropagator: b"baggage",
}


class RequestHeaders(Mapping[str, list[str]]):
    """The ASGI headers as a propagator's carrier, decoding only the names asked for.

    Decoding every header into a dict cost about 1 us per request, for the one or two names a
    propagator reads (usually absent).
    """

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        self.raw = raw  # read once per name asked for

    def get(self, name: str, default: Any = None) -> Any:
        wanted = name.lower().encode("latin-1")
        values = [value.decode("latin-1") for key, value in self.raw if key.lower() == wanted]
        return values or default

    def __getitem__(self, name: str) -> list[str]:
        values: list[str] | None = self.get(name)
        if values is None:
            raise KeyError(name)
        return values

    def __iter__(self) -> Iterator[str]:
        return iter(_decoded(self.raw))

    def __len__(self) -> int:
        return len(_decoded(self.raw))


def raw_headers(scope: Mapping[str, Any]) -> Sequence[tuple[bytes, bytes]]:
    """An ASGI request's headers, as a sequence: ASGI allows any iterable, to be read once."""
    raw = scope.get("headers", ())
    return raw if raw.__class__ is list or raw.__class__ is tuple else list(raw)


def extract_parent(raw: Sequence[tuple[bytes, bytes]]) -> Context | None:
    """What `propagate.extract` returns for these headers."""
    textmap = propagate.get_global_textmap()
    shortcut = _shortcut if _shortcut.textmap is textmap else _shortcut_for(textmap)
    if shortcut.names is not None and not _carries(raw, shortcut.names):
        return shortcut.start()
    return textmap.extract(RequestHeaders(raw))


@dataclass(frozen=True)
class _Shortcut:
    textmap: TextMapPropagator | None
    names: frozenset[bytes] | None  # the headers the propagators read; None: always call them
    start: Callable[[], Context | None]  # the context they return when none is present


def _shortcut_for(textmap: TextMapPropagator) -> _Shortcut:
    global _shortcut
    propagators: Sequence[TextMapPropagator] = (
        textmap._propagators  # private: test_sdk_internals
        if type(textmap) is CompositePropagator
        else [textmap]
    )
    kinds = [type(propagator) for propagator in propagators]
    if all(kind in _READS for kind in kinds):
        # Each passes on what it was given; only the first starts from no context.
        start = _START_WITHOUT_HEADER[kinds[0]] if kinds else _no_context
        _shortcut = _Shortcut(textmap, frozenset(_READS[kind] for kind in kinds), start)
    else:
        _shortcut = _Shortcut(textmap, None, _no_context)
    return _shortcut


def _no_context() -> None:
    return None


def _carries(raw: Sequence[tuple[bytes, bytes]], names: frozenset[bytes]) -> bool:
    for key, _ in raw:  # noqa: SIM110 (any() over a generator costs more, for a few headers)
        if key.lower() in names:
            return True
    return False


def _decoded(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    """Request headers by lower-case name."""
    found: dict[str, list[str]] = {}
    for key, value in raw:
        found.setdefault(key.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return found


_shortcut = _Shortcut(None, None, _no_context)
