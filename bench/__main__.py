"""`python -m bench`: measure everything, write the JSON, docs/performance.md and the chart.

`python -m bench --smoke` is the quick end-to-end check (writes under bench/results/ only);
`python -m bench --help` lists the knobs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, replace
from typing import Any, NoReturn

from bench import (
    instructions,
    machine,
    memory,
    readme,
    report,
    scrape,
    serialise,
    startup,
    targets,
    throughput,
    workers_scrape,
)
from bench.procs import (
    LOAD_CORE,
    BenchError,
    Processes,
    clean_env,
    free_port,
    pinned,
    python_module,
    require_tools,
    wait_http,
)
from bench.settings import (
    FULL_OUTPUTS,
    PARTS,
    REJECTED_OUTPUTS,
    RESULTS_DIR,
    ROOT,
    Settings,
    override,
    preset,
)
from bench.sink import SinkClient
from bench.variants import VARIANTS, select

Results = dict[str, Any]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="every variant and part once, briefly")
    p.add_argument("--rounds", type=int, help="rounds over all variants (full: 5)")
    p.add_argument("--duration", type=int, dest="duration_s", help="seconds per route (full: 5)")
    p.add_argument("--warmup", type=int, dest="warmup_s", help="wrk warm-up seconds (full: 2)")
    p.add_argument("--connections", type=int, help="wrk connections (32)")
    p.add_argument("--variants", type=_names, help="comma list (see --list); bare is always run")
    p.add_argument("--skip", type=_names, help=f"comma list of parts: {','.join(PARTS)}")
    p.add_argument("--scrape-series", type=_ints, help="comma list of sizes (1000,10000,20000)")
    p.add_argument("--memory-requests", type=int, help="requests in the flood (200000)")
    p.add_argument("--startup-repeats", type=int, help="starts per mode (5)")
    p.add_argument("--report-only", action="store_true", help="re-render from the saved JSON")
    p.add_argument("--check-targets", action="store_true", help="exit 3 if a target is not met")
    p.add_argument("--list", action="store_true", help="list the variants and exit")
    return p.parse_args(argv)


def _names(value: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in value.split(",") if n.strip())


def _ints(value: str) -> tuple[int, ...]:
    return tuple(int(n) for n in _names(value))


def settings_from(args: argparse.Namespace) -> Settings:
    skip = frozenset(args.skip) if args.skip else None
    unknown = (skip or frozenset()) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown part(s) in --skip: {', '.join(sorted(unknown))}")
    return override(
        preset(args.smoke),
        rounds=args.rounds,
        duration_s=args.duration_s,
        warmup_s=args.warmup_s,
        connections=args.connections,
        variants=args.variants,
        skip=skip,
        scrape_series=args.scrape_series,
        memory_requests=args.memory_requests,
        startup_repeats=args.startup_repeats,
    )


_STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench {time.monotonic() - _STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)


def measure(settings: Settings, argv: list[str]) -> Results:
    require_tools()
    variants = select(settings.variants)  # fails fast on a misspelt name
    start = time.monotonic()
    results: Results = {"meta": machine.describe(argv)}
    os.sched_setaffinity(0, {LOAD_CORE})  # the harness itself stays off the server core
    results["meta"]["settings"] = serialise.settings_data(settings)
    logs = RESULTS_DIR / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    with Processes(logs) as procs:
        sink = _start_sink(procs)
        if settings.runs("throughput"):
            rig = throughput.Rig(settings, procs, sink)
            runs = throughput.measure(rig, variants, progress)
            results["throughput"] = serialise.throughput_data(runs)
        if settings.runs("instructions"):
            counts = instructions.measure(
                sink.endpoint,
                progress,
                settings.instruction_requests,
                settings.instruction_memo_requests,
            )
            results["instructions"] = [asdict(count) for count in counts]
        if settings.runs("scrape"):
            results["scrape"] = scrape.measure_sizes(
                settings.scrape_series, settings.scrape_repeats, progress
            )
        if settings.runs("workers-scrape"):
            results["workers_scrape"] = workers_scrape.measure(settings, procs, progress)
        if settings.runs("memory"):
            flooded = memory.measure(settings, procs, progress)
            results["memory"] = [serialise.memory_data(r) for r in flooded]
        if settings.runs("startup"):
            starts = startup.measure(settings, procs, progress)
            results["startup"] = [serialise.startup_data(r) for r in starts]
    results["meta"]["elapsed_s"] = time.monotonic() - start
    results["meta"]["loadavg_end"] = list(os.getloadavg())
    return results


def _start_sink(procs: Processes) -> SinkClient:
    port = free_port()
    argv = pinned(LOAD_CORE, python_module("bench.sink", str(port)))
    proc = procs.start("otlp-sink", argv, clean_env())
    wait_http(proc, port, "/stats", timeout=10)
    return SinkClient(port)


def write(results: Results, settings: Settings) -> None:
    results["targets"] = [t.as_dict() for t in targets.evaluate(results)]
    out = settings.outputs
    for path in (out.json, out.markdown, out.chart):
        path.parent.mkdir(parents=True, exist_ok=True)
    out.json.write_text(json.dumps(results, indent=1) + "\n")
    out.markdown.write_text(report.render(results, out.chart.name, str(out.json.relative_to(ROOT))))
    if results.get("throughput"):
        from bench import chart  # matplotlib: the bench extra only, not the tests' install

        chart.draw(results, out.chart)
    if out == FULL_OUTPUTS:
        readme.update(performance=out.markdown)  # the README's summary, from what was published


def problems(results: Results) -> list[str]:
    """What makes this run unpublishable (not a missed target): a variant that could not run or
    failed its start-up checks, failed requests."""
    found = []
    for v in (results.get("throughput") or {}).get("variants", []):
        if v["status"] != "ok":
            found.append(f"{v['name']} {v['status']}: {v['reason']}")
        for route, s in v["summary"].items():
            if s["errors"]:
                found.append(f"{v['name']} {route}: {s['errors']} failed requests")
    return found


def _exit_on_signal(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds through Processes, which kills every child


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.list:
        for v in VARIANTS:
            print(f"{v.name:20} {v.label}{'' if v.default else '  (not in the default set)'}")
        return 0
    settings = settings_from(args)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    if args.report_only:
        results = json.loads(settings.outputs.json.read_text())
    else:
        try:
            results = measure(settings, argv)
        except BenchError as error:
            print(f"bench: {error}", file=sys.stderr)
            return 2
    found = problems(results)
    if found and not args.report_only:  # nothing is published from a run that went wrong
        settings = replace(settings, outputs=REJECTED_OUTPUTS)
    write(results, settings)
    print(report.summary(results))
    for problem in found:
        print(f"bench: {problem}", file=sys.stderr)
    if found:
        where = settings.outputs.json.relative_to(ROOT)
        print(f"bench: not published; this run's results are in {where}", file=sys.stderr)
        return 1
    missed = [t for t in results["targets"] if t["met"] is False]
    return 3 if args.check_targets and missed else 0


if __name__ == "__main__":
    sys.exit(main())
