"""How each gauge family is combined across worker processes on `/metrics`.

Counters, histograms and summaries are added up. A gauge is combined by its mode, modelled on
prometheus_client's multiprocess modes:

- `all`: one series per worker, labelled `pid`, workers that exited included (the default, as in
  prometheus_client); `liveall`: the same for live workers only;
- `min`, `max`, `sum`: over every worker, the last values of exited ones included;
  `livemin`, `livemax`, `livesum`: over live workers only.

`mostrecent` is refused: it needs the time each worker last set the gauge, which only
prometheus_client's multiprocess files record; a gauge read at collection time has no such time.

Choose per metric with `setup_telemetry(app, gauge_modes={"queue_depth": "livesum"})` or
`OTEL_PYTHON_FASTAPI_GAUGE_MODES=queue_depth=livesum,temperature=max` (the argument wins).
"""

from __future__ import annotations

from collections.abc import Mapping

from otel.config import TelemetryConfigError

GAUGE_MODES_VARIABLE = "OTEL_PYTHON_FASTAPI_GAUGE_MODES"
ADDITIVE_TYPES = frozenset({"counter", "histogram", "summary"})
MODES = ("all", "liveall", "min", "max", "sum", "livemin", "livemax", "livesum")
LIVE_ONLY = frozenset({"liveall", "livemin", "livemax", "livesum"})
PER_WORKER = frozenset({"all", "liveall"})
DEFAULT_MODE = "all"

# The contract's and the runtime's gauges.
BUILTIN_MODES: Mapping[str, str] = {
    "memo_total": "livemax",  # every worker reads the same table
    "fastapi_active_connections": "livesum",  # each worker has its own pool
    "python_info": "livemax",
    "process_max_fds": "livemax",
    "process_start_time_seconds": "livemin",
    "process_resident_memory_bytes": "livesum",
    "process_virtual_memory_bytes": "livesum",
    "process_open_fds": "livesum",
}
# Info and stateset series are the same in every worker.
DEFAULT_BY_TYPE: Mapping[str, str] = {"info": "livemax", "stateset": "livemax"}


class GaugeModes:
    def __init__(self, chosen: Mapping[str, str] | None = None) -> None:
        self._modes = {**BUILTIN_MODES, **_checked(chosen or {})}

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], chosen: Mapping[str, str] | None = None
    ) -> GaugeModes:
        return cls({**parse_gauge_modes(env.get(GAUGE_MODES_VARIABLE, "")), **(chosen or {})})

    def mode(self, name: str, family_type: str) -> str:
        if family_type in ADDITIVE_TYPES:
            return "sum"
        return self._modes.get(name) or DEFAULT_BY_TYPE.get(family_type, DEFAULT_MODE)


def parse_gauge_modes(text: str) -> dict[str, str]:
    modes = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, mode = item.partition("=")
        if not equals or not name.strip():
            raise TelemetryConfigError(
                f"{GAUGE_MODES_VARIABLE} takes name=mode pairs separated by commas, not {item!r}"
            )
        modes[name.strip()] = mode.strip()
    return _checked(modes)


def _checked(modes: Mapping[str, str]) -> dict[str, str]:
    for name, mode in modes.items():
        if mode in ("mostrecent", "livemostrecent"):
            raise TelemetryConfigError(
                f"gauge mode {mode!r} for {name!r} is not supported: it needs the time each "
                "worker last set the gauge, which is not recorded here; use one of "
                + ", ".join(MODES)
            )
        if mode not in MODES:
            raise TelemetryConfigError(
                f"unknown gauge mode {mode!r} for {name!r}; use one of " + ", ".join(MODES)
            )
    return dict(modes)
