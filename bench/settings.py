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

# A run with fewer variants, parts or seconds than the full preset is kept for reading: publishing
# it would replace the full run's tables with a few rows.
PARTIAL_OUTPUTS = Outputs(
    json=RESULTS_DIR / "partial.json",
    markdown=RESULTS_DIR / "partial.md",
    chart=RESULTS_DIR / "partial.png",
)

# A run with a failed variant or failed requests is kept for reading, never published.
REJECTED_OUTPUTS = Outputs(
    json=RESULTS_DIR / "rejected.json",
    markdown=RESULTS_DIR / "rejected.md",
    chart=RESULTS_DIR / "rejected.png",
)


# The paths wrk loads: the cheap route and the parametrised one (`/items/{item_id}`).
PING_PATH = "/ping"
ITEM_PATH = "/items/42"


@dataclass(frozen=True)
class Settings:
    routes: tuple[str, ...] = (PING_PATH, ITEM_PATH)
    rounds: int = 5
    duration_s: int = 5  # wrk measures in whole seconds
    warmup_s: int = 2  # one wrk warm-up per server start; 0 = only the scripted warm-up requests
    connections: int = 32
    variants: tuple[str, ...] = ()  # empty: the default set
    scrape_series: tuple[int, ...] = (1_000, 10_000, 20_000)
    scrape_repeats: int = 7
    workers_scrape_series: int = 20_000
    workers_scrape_workers: int = 4
    workers_scrape_repeats: int = 60
    memory_variants: tuple[str, ...] = ("ours", "promclient")  # "bare" shows the server's own
    memory_requests: int = 200_000
    memory_warmup_requests: int = 20_000
    startup_repeats: int = 7
    startup_warmup: bool = True  # one untimed start first: migrates the database, fills caches
    instruction_requests: tuple[int, int] = (500, 2500)  # the two counts callgrind compares
    instruction_memo_requests: tuple[int, int] = (100, 400)
    skip: frozenset[str] = field(default_factory=frozenset)  # of "throughput", "scrape", ...
    outputs: Outputs = FULL_OUTPUTS
    smoke: bool = False

    def runs(self, part: str) -> bool:
        return part not in self.skip


# Every variant and measurement once, as briefly as still exercises it: under a minute.
SMOKE = Settings(
    routes=(PING_PATH,),  # the other route is still checked to answer 200
    rounds=1,
    duration_s=1,
    warmup_s=0,
    scrape_series=(1_000,),
    scrape_repeats=2,
    workers_scrape_series=2_000,
    workers_scrape_repeats=5,
    memory_requests=5_000,
    memory_warmup_requests=1_000,
    startup_repeats=1,
    startup_warmup=False,
    instruction_requests=(20, 60),
    instruction_memo_requests=(5, 15),
    outputs=SMOKE_OUTPUTS,
    smoke=True,
)
FULL = Settings()

PARTS = ("throughput", "instructions", "scrape", "workers-scrape", "memory", "startup")


def preset(smoke: bool) -> Settings:
    return SMOKE if smoke else FULL


def override(settings: Settings, **changes: Any) -> Settings:
    """The preset with every change that is not None applied; a changed full preset is partial."""
    changed = replace(settings, **{k: v for k, v in changes.items() if v is not None})
    if changed != settings and changed.outputs == FULL_OUTPUTS:
        return replace(changed, outputs=PARTIAL_OUTPUTS)
    return changed
