"""The fault tests N times with every CPU core kept busy: do they pass on a loaded machine?

    python scripts/cpu_burn.py [--runs N] [--burners K] [--out DIR] [-- PYTEST ARGS]

Starts one busy-loop process per core (at the tests' own priority: no nice), runs
`python -m pytest tests/faults -p no:cacheprovider` N times one after the other, prints pass or
fail per run, and keeps each failing run's whole output (stdout and stderr) in DIR. Exits 1 if
any run failed. `make test-faults-loaded` runs it with the project's venv.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PYTEST = [sys.executable, "-m", "pytest", "tests/faults", "-p", "no:cacheprovider"]
BUSY_LOOP = "while True: pass"


@contextmanager
def burners(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` processes that each keep one core busy until the block ends."""
    started = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
    try:
        yield started
    finally:
        for burner in started:
            burner.kill()
            burner.wait()


def run_once(number: int, pytest_args: list[str], out: Path) -> bool:
    """One pytest run; its output is kept in `out` only when it failed."""
    log = out / f"run-{number:02d}.log"
    start = time.monotonic()
    with log.open("wb") as output:
        code = subprocess.call(PYTEST + pytest_args, stdout=output, stderr=subprocess.STDOUT)
    took = time.monotonic() - start
    if code == 0:
        log.unlink()
        print(f"run {number}: passed in {took:.0f}s", flush=True)
        return True
    print(f"run {number}: FAILED (exit {code}) in {took:.0f}s; output in {log}", flush=True)
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith(("FAILED ", "ERROR ")):  # pytest's short summary (-ra)
            print(f"    {line}", flush=True)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 1, help="default: cores")
    parser.add_argument("--out", type=Path, help="where failing runs' output goes (default: tmp)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="faults-under-load-"))
    out.mkdir(parents=True, exist_ok=True)

    with burners(args.burners):
        print(
            f"{args.burners} CPU burners; {args.runs} runs of: {' '.join(PYTEST[1:])}", flush=True
        )
        passed = sum(run_once(n, args.pytest_args, out) for n in range(1, args.runs + 1))
    print(f"{passed} of {args.runs} runs passed under {args.burners} burners")
    return 0 if passed == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
