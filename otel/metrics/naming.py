"""OpenTelemetry metric names to Prometheus names, as the collector's Prometheus exporters do.

Used by the remote-write path, which must end with the same names as the in-process exporter and
the collector: invalid characters become `_`, the unit becomes a suffix unless the name already
ends with it, and monotonic sums end in exactly one `_total`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_TOKEN_SEPARATORS = re.compile(r"[^a-zA-Z0-9:]+")

# UCUM units to the words Prometheus uses; units in braces ({requests}) are annotations, dropped.
UNIT_SUFFIXES: Mapping[str, str] = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "min": "minutes",
    "h": "hours",
    "d": "days",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "%": "percent",
}


@lru_cache(maxsize=1024)
def metric_name(name: str, unit: str, *, monotonic_sum: bool, gauge: bool = False) -> str:
    """The collector's rules: split into tokens, add the unit's word unless it is already a
    token, `_ratio` for gauges of unit 1, and for counters drop every `total` token and end
    with one."""
    tokens = [t for t in _TOKEN_SEPARATORS.split(name) if t]
    suffix = unit_suffix(unit) if unit != "1" else ("ratio" if gauge else "")
    if monotonic_sum:
        tokens = [t for t in tokens if t != "total"]
    if suffix and suffix not in tokens:
        tokens.append(suffix)
    if monotonic_sum:
        tokens.append("total")
    joined = "_".join(tokens)
    return "_" + joined if joined[:1].isdigit() else joined


def unit_suffix(unit: str) -> str:
    if not unit or unit.startswith("{"):
        return ""
    if "/" in unit:
        numerator, _, denominator = unit.partition("/")
        per = UNIT_SUFFIXES.get(denominator, denominator).removesuffix("s")
        return f"{unit_suffix(numerator)}_per_{per}".lstrip("_")
    return UNIT_SUFFIXES.get(unit, _INVALID_NAME_CHARS.sub("_", unit))


@lru_cache(maxsize=1024)
def label_name(key: str) -> str:
    label = _INVALID_LABEL_CHARS.sub("_", key)
    return "key" + label if label[:1].isdigit() else label


def job_and_instance(resource: Mapping[str, object]) -> tuple[str, str]:
    """`job` and `instance` from a resource, as the collector derives them."""
    job = str(resource.get("service.name", ""))
    namespace = resource.get("service.namespace")
    if namespace:
        job = f"{namespace}/{job}"
    return job, str(resource.get("service.instance.id", ""))
