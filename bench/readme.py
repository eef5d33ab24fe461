"""The README's performance summary, copied from docs/performance.md between two markers.

`python -m bench` runs it after publishing a full run; `python -m bench.readme` runs it alone.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bench.settings import DOCS_DIR, ROOT

README = ROOT / "README.md"
START = "<!-- performance summary: generated from docs/performance.md by `python -m bench` -->"
END = "<!-- end of the performance summary -->"
_MEASURED = re.compile(r"^Measured (.+?) with `[^`]+` in [\d.]+ minutes", re.M)
_TARGETS = re.compile(r"^## Targets\b[^\n]*\n\n((?:\|[^\n]*\n)+)", re.M)


def summary(performance_md: str) -> str:
    """The measured-on line and the targets table of docs/performance.md."""
    measured, targets = _MEASURED.search(performance_md), _TARGETS.search(performance_md)
    if measured is None or targets is None:
        raise ValueError("docs/performance.md has no 'Measured ...' line or no Targets table")
    return (
        f"The latest full run (measured {measured.group(1)}; every figure in "
        "[docs/performance.md](docs/performance.md)):\n\n" + targets.group(1).rstrip("\n")
    )


def update(readme: Path = README, performance: Path = DOCS_DIR / "performance.md") -> None:
    text = readme.read_text()
    begin, end = text.find(START), text.find(END)
    if begin < 0 or end < begin:
        raise ValueError(f"{readme.name} has no performance summary markers")
    generated = f"{START}\n{summary(performance.read_text())}\n{END}"
    readme.write_text(text[:begin] + generated + text[end + len(END) :])


if __name__ == "__main__":
    update()
    sys.exit(0)
