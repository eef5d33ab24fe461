"""What one run measures and for how long: the full preset, the smoke preset, and overrides."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
DOCS_DIR = ROOT / "docs"


@dataclass(frozen=True)
class Outputs:
    json: Path
    markdown: Path
    chart: Path


FULL_OUTPUTS = Outputs(
    json=RESULTS_DIR / "latest.json",
    markdown=DOCS_DIR / "performance.md",
    chart=DOCS_DIR / "performance.png",
)
# A smoke run never touches docs/: its numbers are too short to publish.
SMOKE_OUTPUTS = Outputs(
    json=RESULTS_DIR / "smoke.json",
    markdown=RESULTS_DIR / "smoke.md",
    chart=RESULTS_DIR / "smoke.png",
)


@dataclass(frozen=True)
class Settings:
    rounds: int = 5
    duration_s: int = 5  # wrk measures in whole seconds
    warmup_s: int = 2  # one wrk warm-up per server start; 0 = only the scripted warm-up requests
    connections: int = 32
    variants: tuple[str, ...] = ()  # empty: the default set
    scrape_series: tuple[int, ...] = (1_000, 10_000, 20_000)
    scrape_repeats: int = 7
    memory_requests: int = 200_000
    memory_warmup_requests: int = 20_000
    startup_repeats: int = 5
    skip: frozenset[str] = field(default_factory=frozenset)  # of "throughput", "scrape", ...
    outputs: Outputs = FULL_OUTPUTS
    smoke: bool = False

    def runs(self, part: str) -> bool:
        return part not in self.skip


SMOKE = Settings(
    rounds=1,
    duration_s=1,
    warmup_s=0,
    scrape_series=(1_000,),
    scrape_repeats=2,
    memory_requests=10_000,
    memory_warmup_requests=2_000,
    startup_repeats=1,
    outputs=SMOKE_OUTPUTS,
    smoke=True,
)
FULL = Settings()

PARTS = ("throughput", "scrape", "memory", "startup")


def preset(smoke: bool) -> Settings:
    return SMOKE if smoke else FULL


def override(settings: Settings, **changes: Any) -> Settings:
    """The preset with every change that is not None applied."""
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})
