"""OpenTelemetry metric and attribute names to Prometheus names: one rule for every export path.

The rule is the one `github.com/prometheus/otlptranslator` applies with the settings of our
collector (`translation_strategy: UnderscoreEscapingWithSuffixes`, the collector's default label
sanitisation): the collector's Prometheus exporters and Prometheus's own OTLP ingestion use it,
and so do our in-process `/metrics` and our remote write. tests/data/otlptranslator_cases.json
holds upstream's own test cases.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from enum import Enum
from functools import lru_cache


class MetricType(Enum):
    """What the translator needs to know of a metric's data."""

    MONOTONIC_COUNTER = "MonotonicCounter"
    NON_MONOTONIC_COUNTER = "NonMonotonicCounter"
    GAUGE = "Gauge"
    HISTOGRAM = "Histogram"
    EXPONENTIAL_HISTOGRAM = "ExponentialHistogram"
    SUMMARY = "Summary"
    UNKNOWN = "Unknown"


class NamingError(ValueError):
    """A name that normalises to nothing usable (empty, or only underscores)."""


# UCUM units to the words Prometheus uses (OpenTelemetry's Prometheus compatibility rules).
UNIT_WORDS: Mapping[str, str] = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "1": "",
    "%": "percent",
}
# The denominator of `x/y` units, singular: By/s -> bytes_per_second.
PER_UNIT_WORDS: Mapping[str, str] = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}

_NAME_SEPARATORS = re.compile(r"[^a-zA-Z0-9:]+")
_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9:]")
_INVALID_LABEL_RUNS = re.compile(r"[^a-zA-Z0-9]+")
_UNDERSCORE_RUNS = re.compile(r"_{2,}")


@lru_cache(maxsize=4096)
def metric_name(name: str, unit: str, metric_type: MetricType) -> str:
    """The Prometheus name: the name's tokens, then the unit's words unless the name already has
    them as tokens, `_total` for monotonic counters, `_ratio` for gauges of unit `1`."""
    tokens = [t for t in _NAME_SEPARATORS.split(name) if t]
    main, per = _unit_parts(unit)
    main, per = _clean_unit(main), _clean_unit(per)
    tokens = _with_unit_tokens(tokens, main, per)
    if metric_type is MetricType.MONOTONIC_COUNTER:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if unit == "1" and metric_type is MetricType.GAUGE:
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    joined = "_".join(tokens)
    if joined[:1].isdigit():
        joined = "_" + joined
    if not joined:
        raise NamingError(f'normalization for metric "{name}" resulted in empty name')
    if joined != name and not joined.strip("_"):
        raise NamingError(f'normalization for metric "{name}" resulted in invalid name "{joined}"')
    return joined


def unit_name(unit: str) -> str:
    """The unit as words, as the collector writes it in `# UNIT` (By/s -> bytes_per_second)."""
    main, per = _unit_parts(unit)
    words = "_".join(part for part in (_clean_unit(main), _clean_unit(per)) if part)
    return words.removeprefix("_").removesuffix("_")


@lru_cache(maxsize=4096)
def label_name(key: str) -> str:
    """The Prometheus label name of an attribute key: invalid characters and runs of them become
    one `_`; a leading digit gets `key_`, a single leading underscore `key`; `__x__` is kept."""
    if not key:
        raise NamingError("label name is empty")
    reserved = len(key) >= 4 and key.startswith("__") and key.endswith("__")
    inner = key[2:-2] if reserved else key
    label = _INVALID_LABEL_RUNS.sub("_", inner)
    if reserved:
        label = f"__{label}__"
    if label[0].isdigit():
        label = "key_" + label
    elif label.startswith("_") and not label.startswith("__"):
        label = "key" + label
    if not label.strip("_"):
        raise NamingError(
            f'normalization for label name "{key}" resulted in invalid name "{label}"'
        )
    return label


def prometheus_labels(attributes: Iterable[tuple[str, object]]) -> dict[str, str]:
    """Attributes as Prometheus labels. Keys that normalise to the same label keep every value,
    joined with `;` in the order of the original keys, as Prometheus's OTLP translator does."""
    labels: dict[str, str] = {}
    for key, value in sorted(attributes, key=lambda item: item[0]):
        label = label_name(key)
        text = label_value(value)
        labels[label] = f"{labels[label]};{text}" if label in labels else text
    return labels


def label_value(value: object) -> str:
    """An attribute value as label text: a string as it is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def _unit_parts(unit: str) -> tuple[str, str]:
    main_text, slash, per_text = unit.partition("/")
    main_text, per_text = main_text.strip(), per_text.strip()
    main = "" if not main_text or _annotated(main_text) else UNIT_WORDS.get(main_text, main_text)
    per = ""
    if slash and per_text and not _annotated(per_text):
        per = "per_" + PER_UNIT_WORDS.get(per_text, per_text)
    return main, per


def _annotated(unit: str) -> bool:
    return "{" in unit or "}" in unit


def _clean_unit(unit: str) -> str:
    return _UNDERSCORE_RUNS.sub("_", _INVALID_NAME_CHARS.sub("_", unit)).removeprefix("_")


def _with_unit_tokens(tokens: list[str], main: str, per: str) -> list[str]:
    if main in tokens:
        main = ""
    if per == "per_":
        per = ""
    else:
        per = per.removesuffix("_")
        if per in tokens:
            per = ""
    if per:
        main = main.removesuffix("_")
    return tokens + [part for part in (main, per) if part]


def job_and_instance(resource: Mapping[str, object]) -> tuple[str, str]:
    """`job` and `instance` from a resource, as the collector derives them."""
    job = str(resource.get("service.name", ""))
    namespace = resource.get("service.namespace")
    if namespace:
        job = f"{namespace}/{job}"
    return job, str(resource.get("service.instance.id", ""))
