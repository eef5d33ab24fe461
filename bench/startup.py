"""Start-up time of the memo service: from exec to the first 200 from /health, with telemetry and
with `OTEL_SDK_DISABLED=true`, on the embedded default (a fresh SQLite file, no Redis)."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.procs import (
    SERVER_CORE,
    Processes,
    clean_env,
    free_port,
    pinned,
    started,
    uvicorn,
    wait_http,
)
from bench.settings import Settings

SERVICE_APP = "service.main:app"
MODES = {"telemetry on": {}, "telemetry off": {"OTEL_SDK_DISABLED": "true"}}


@dataclass
class StartupResult:
    mode: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)


def measure(
    settings: Settings, procs: Processes, progress: Callable[[str], None]
) -> list[StartupResult]:
    results = {mode: StartupResult(mode) for mode in MODES}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as data_dir:
        if settings.startup_warmup:
            progress("startup: one untimed start (migrates the database, warms the file cache)")
            _start_once(procs, data_dir, {})
        for rep in range(settings.startup_repeats):
            for mode, env in MODES.items():  # interleaved
                progress(f"startup {rep + 1}/{settings.startup_repeats}: {mode}")
                results[mode].seconds.append(_start_once(procs, data_dir, env))
    return list(results.values())


def _start_once(procs: Processes, data_dir: str, env: dict[str, str]) -> float:
    port = free_port()
    argv = pinned(SERVER_CORE, uvicorn(SERVICE_APP, port))
    start = time.perf_counter()
    with started(procs, "service", argv, clean_env({"DATA_DIR": data_dir, **env})) as proc:
        wait_http(proc, port, "/health", timeout=60)
        return time.perf_counter() - start
