"""Telemetry settings read from the standard OpenTelemetry environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Values of OTEL_METRICS_EXPORTER and OTEL_TRACES_EXPORTER this package understands.
METRICS_EXPORTERS = ("prometheus", "otlp", "prometheus_remote_write", "console", "none")
TRACES_EXPORTERS = ("otlp", "console", "none")
OTLP_PROTOCOLS = ("grpc", "http/protobuf")

DEFAULT_SERVICE_NAME = "fastapi"
DEFAULT_METRICS_PATH = "/metrics"
DEFAULT_EXPORT_INTERVAL_MS = 60_000


class TelemetryConfigError(ValueError):
    """A telemetry setting has a value this package cannot use."""


@dataclass(frozen=True)
class TelemetryConfig:
    disabled: bool = False
    service_name: str = DEFAULT_SERVICE_NAME
    metrics_exporters: tuple[str, ...] = ("prometheus",)
    metrics_path: str = DEFAULT_METRICS_PATH
    export_interval_ms: int = DEFAULT_EXPORT_INTERVAL_MS
    traces_exporters: tuple[str, ...] = ()
    # Extra span processors, e.g. an in-memory exporter in tests; any turns tracing on.
    span_processors: tuple[Any, ...] = field(default=(), compare=False)
    # The variables this config was read from; exporters read their own settings from it.
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, service_name: str = DEFAULT_SERVICE_NAME
    ) -> TelemetryConfig:
        env = os.environ if env is None else env
        return cls(
            disabled=_parse_bool(env, "OTEL_SDK_DISABLED"),
            service_name=env.get("OTEL_SERVICE_NAME", "").strip() or service_name,
            metrics_exporters=parse_exporters(env.get("OTEL_METRICS_EXPORTER", "prometheus")),
            export_interval_ms=_parse_int(
                env, "OTEL_METRIC_EXPORT_INTERVAL", DEFAULT_EXPORT_INTERVAL_MS
            ),
            traces_exporters=parse_exporters(
                env.get("OTEL_TRACES_EXPORTER", "none"),
                variable="OTEL_TRACES_EXPORTER",
                valid=TRACES_EXPORTERS,
                default=(),
            ),
            env=dict(env),
        )

    @property
    def serves_metrics(self) -> bool:
        return not self.disabled and "prometheus" in self.metrics_exporters

    @property
    def tracing(self) -> bool:
        return not self.disabled and bool(self.traces_exporters or self.span_processors)


def parse_exporters(
    value: str,
    *,
    variable: str = "OTEL_METRICS_EXPORTER",
    valid: tuple[str, ...] = METRICS_EXPORTERS,
    default: tuple[str, ...] = ("prometheus",),
) -> tuple[str, ...]:
    """Parse an exporter variable as the spec says: a comma list where `none` means none."""
    names = tuple(dict.fromkeys(n.strip().lower() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise TelemetryConfigError(
            f"{variable} has unknown value(s) {', '.join(unknown)}; "
            f"valid values are {', '.join(valid)}"
        )
    if "none" in names:
        return ()
    return names or default


def otlp_protocol(env: Mapping[str, str], signal: str) -> str:
    """The signal's own protocol variable, else the shared one, else http/protobuf."""
    protocol = (
        env.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol not in OTLP_PROTOCOLS:
        raise TelemetryConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r} is not supported; "
            f"valid values are {', '.join(OTLP_PROTOCOLS)}"
        )
    return protocol


def otlp_timeout_seconds(env: Mapping[str, str], signal: str) -> float | None:
    """OTEL_EXPORTER_OTLP_[<SIGNAL>_]TIMEOUT in milliseconds, as the spec says, as seconds.

    The Python SDK reads these variables as seconds, so the value is passed explicitly.
    """
    name = f"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT"
    if not env.get(name, "").strip():
        name = "OTEL_EXPORTER_OTLP_TIMEOUT"
    if not env.get(name, "").strip():
        return None
    return _parse_int(env, name, 10_000) / 1000


def _parse_bool(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in ("", "false"):
        return False
    if value == "true":
        return True
    raise TelemetryConfigError(f"{name} must be 'true' or 'false', not {value!r}")


def _parse_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        parsed = int(value)
    except ValueError:
        raise TelemetryConfigError(f"{name} must be an integer, not {value!r}") from None
    if parsed <= 0:
        raise TelemetryConfigError(f"{name} must be positive, not {parsed}")
    return parsed
