"""Fast exposition of the request metrics in Prometheus text and OpenMetrics formats.

Writes exactly what prometheus_client would write for the same families (a test holds the two
side by side), with the per-series label text built once per (method, endpoint) and reused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import cast

from prometheus_client import utils

from otel.metrics.aggregator import Entry, RequestExemplar
from otel.metrics.contract import REQUEST_DURATION, REQUESTS

floatToGoString = cast(Callable[[float], str], utils.floatToGoString)
_REQUESTS_NAME = REQUESTS.prometheus_name
_DURATION_NAME = REQUEST_DURATION.prometheus_name


def render_request_metrics(
    entries: Iterable[Entry], bounds: tuple[float, ...], *, openmetrics: bool
) -> str:
    entries = sorted(entries, key=lambda e: (e.endpoint, e.method))
    lines = _header(_REQUESTS_NAME, REQUESTS.description, "counter", openmetrics)
    for entry in entries:
        labels = _pair_labels(entry.endpoint, entry.method)
        for status, count in sorted(entry.statuses.items()):
            lines.append(f'{_REQUESTS_NAME}{{{labels},status_code="{status}"}} {_number(count)}')
    lines += _header(_DURATION_NAME, REQUEST_DURATION.description, "histogram", openmetrics)
    les = _le_texts(bounds)
    for entry in entries:
        lines += _histogram_lines(entry, les, openmetrics)
    return "\n".join(lines) + "\n"


def _header(name: str, description: str, kind: str, openmetrics: bool) -> list[str]:
    if not openmetrics:
        return [f"# HELP {name} {description}", f"# TYPE {name} {kind}"]
    family = name.removesuffix("_total") if kind == "counter" else name
    header = [f"# HELP {family} {description}", f"# TYPE {family} {kind}"]
    if kind == "histogram" and REQUEST_DURATION.unit == "s":
        header.append(f"# UNIT {family} seconds")
    return header


def _histogram_lines(entry: Entry, les: list[str], openmetrics: bool) -> list[str]:
    endpoint, method = _escape(entry.endpoint), entry.method
    lines = []
    cumulative = 0
    for index, (le, count) in enumerate(zip(les, entry.buckets, strict=True)):
        cumulative += count
        line = f'{_DURATION_NAME}_bucket{{endpoint="{endpoint}",le="{le}",method="{method}"}} '
        line += _number(cumulative)
        if openmetrics and entry.exemplars is not None and entry.exemplars[index] is not None:
            line += _exemplar(entry.exemplars[index])  # type: ignore[arg-type]
        lines.append(line)
    labels = _pair_labels(entry.endpoint, entry.method)
    lines.append(f"{_DURATION_NAME}_count{{{labels}}} {_number(cumulative)}")
    lines.append(f"{_DURATION_NAME}_sum{{{labels}}} {floatToGoString(entry.sum)}")
    return lines


def _exemplar(exemplar: RequestExemplar) -> str:
    labels = f'span_id="{exemplar.span_id:016x}",trace_id="{exemplar.trace_id:032x}"'
    seconds = round(exemplar.time_unix_nano / 1e9, 3)
    return f" # {{{labels}}} {floatToGoString(exemplar.value)} {seconds}"


def _number(count: int) -> str:
    return f"{count}.0" if count < 1_000_000 else floatToGoString(count)


@lru_cache(maxsize=4096)
def _pair_labels(endpoint: str, method: str) -> str:
    return f'endpoint="{_escape(endpoint)}",method="{method}"'


@lru_cache(maxsize=4096)
def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


@lru_cache(maxsize=8)
def _le_texts(bounds: tuple[float, ...]) -> list[str]:
    return [floatToGoString(b) for b in bounds] + ["+Inf"]
