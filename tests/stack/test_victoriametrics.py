"""The dashboards and recording rules on VictoriaMetrics give Prometheus's numbers.

docker-compose.victoriametrics.yml, with Debian's binaries of the same version as its images
(1.79): two vmagents share the scraping of the project's prometheus.yml (targets mapped to the
local stack of conftest.py, `-promscrape.cluster.*` as in compose) and write every sample to
VictoriaMetrics and, for the comparison, to a Prometheus with the remote-write receiver on and
the project's rules. Both stores hold the same samples, so every panel query of every dashboard
and every recording rule, evaluated at the same instant on both, must agree. vmalert runs the
same rule files against VictoriaMetrics, as in compose.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from stack_support import (
    PROMETHEUS_DIR,
    PanelQuery,
    Stack,
    expand,
    load_dashboards,
    local_prometheus_config,
    panel_queries,
    require_binary,
    wait_http,
)

from tests.servers import Processes, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

SHARDS = 2
# The panels' ranges as Grafana sends them for a 1-minute dashboard ($__rate_interval is 1m at a
# 15s scrape interval): every window then lies inside the data the test waits for.
WINDOW, WINDOW_SECONDS = "1m", 60
SLOWEST_SCRAPE = 15  # seconds: the global scrape interval (the app's job: 5s)
RATE_SLACK = 0.10  # Prometheus's extrapolation over at most half an interval at each end
DATA_SPAN = 100.0  # seconds of samples before comparing: a 1m window and the sample before it
COMPOSE_FILE = PROMETHEUS_DIR.parent / "docker-compose.victoriametrics.yml"


@dataclass
class Store:
    name: str
    url: str

    def query(self, promql: str, at: float) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.url}/api/v1/query", params={"query": promql, "time": at}, timeout=30
        )
        body = response.json()
        assert body["status"] == "success", f"{self.name}: {promql}: {body}"
        return list(body["data"]["result"])


@dataclass
class Stores:
    prometheus: Store
    victoria: Store
    vmagents: list[str]
    vmalert: str
    processes: Processes
    targets: list[str]


def compose_command(service: str) -> list[str]:
    command: list[str] = yaml.safe_load(COMPOSE_FILE.read_text())["services"][service]["command"]
    return command


def start(processes: Processes, name: str, argv: list[str], ready: str) -> None:
    processes.start(name, argv)
    wait_http(processes, name, ready)


@pytest.fixture(scope="module")
def stores(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    stack.ensure_running()
    logs = tmp_path_factory.mktemp("victoriametrics")
    processes = Processes(logs)
    binaries = {name: require_binary(name) for name in ("victoria-metrics", "vmagent", "vmalert")}
    try:
        victoria = f"http://127.0.0.1:{free_port()}"
        start(
            processes,
            "victoria-metrics",
            [
                binaries["victoria-metrics"],
                f"-storageDataPath={logs / 'vm'}",
                f"-httpListenAddr={victoria[len('http://') :]}",
                # Data is queryable 30s after it arrives by default; the comparison waits instead.
                "-search.latencyOffset=1s",
            ],
            f"{victoria}/health",
        )
        prometheus = start_mirror(processes, logs)
        scrape_config = logs / "scrape.yml"
        compose_targets = stack.ports.compose_targets()
        scrape_config.write_text(yaml.safe_dump(local_prometheus_config(compose_targets)))
        vmagents = []
        for member in range(SHARDS):
            address = f"127.0.0.1:{free_port()}"
            argv = [binaries["vmagent"], f"-httpListenAddr={address}"]
            argv += sharded_scrape_flags(member, scrape_config)
            argv += [f"-remoteWrite.url={url}/api/v1/write" for url in (victoria, prometheus)]
            argv += [f"-remoteWrite.tmpDataPath={logs / f'vmagent-{member}'}"]
            start(processes, f"vmagent-{member}", argv, f"http://{address}/health")
            vmagents.append(f"http://{address}")
        vmalert = f"http://127.0.0.1:{free_port()}"
        argv = [binaries["vmalert"], f"-httpListenAddr={vmalert[len('http://') :]}"]
        argv += vmalert_flags(victoria)
        start(processes, "vmalert", argv, f"{vmalert}/health")
        yield Stores(
            Store("prometheus", prometheus),
            Store("victoria-metrics", victoria),
            vmagents,
            vmalert,
            processes,
            sorted(compose_targets.values()),
        )
    finally:
        processes.stop_all()


def sharded_scrape_flags(member: int, config: Any) -> list[str]:
    """vmagent-N's flags from the compose file, with the local config and write targets."""
    flags = []
    for flag in compose_command(f"vmagent-{member}"):
        name = flag.split("=", 1)[0]
        if name == "-promscrape.config":
            flags.append(f"{name}={config}")
        elif name not in ("-remoteWrite.url", "-remoteWrite.tmpDataPath"):
            flags.append(flag)
    return flags


def vmalert_flags(victoria: str) -> list[str]:
    """vmalert's flags from the compose file with local addresses (no Alertmanager here)."""
    flags = []
    for flag in compose_command("vmalert"):
        name, _, value = flag.partition("=")
        if name == "-rule":
            flags.append(f"-rule={PROMETHEUS_DIR / value.removeprefix('/etc/prometheus/')}")
        elif value.startswith("http://victoriametrics:8428"):
            flags.append(f"{name}={victoria}")
        elif name == "-notifier.url":
            flags.append(f"{name}=http://127.0.0.1:{free_port()}")  # nothing listens
        else:
            flags.append(flag)
    return flags


def start_mirror(processes: Processes, logs: Any) -> str:
    """A Prometheus fed by the vmagents' remote writes, with the project's rules."""
    project = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config = {
        "global": project["global"],
        "rule_files": [str(PROMETHEUS_DIR / path) for path in project["rule_files"]],
    }
    path = logs / "mirror.yml"
    path.write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    argv = [require_binary("prometheus"), f"--config.file={path}"]
    argv += [f"--storage.tsdb.path={logs / 'tsdb'}", f"--web.listen-address={address}"]
    argv += ["--web.enable-remote-write-receiver", "--log.level=warn"]
    start(processes, "prometheus-mirror", argv, f"http://{address}/-/ready")
    return f"http://{address}"


@pytest.fixture(scope="module")
def filled(stores: Stores) -> Stores:
    """The stores once both hold DATA_SPAN seconds of samples of every target."""
    started = time.time()

    def spans_enough() -> bool:
        stores.processes.check_alive()
        now = time.time()
        for store in (stores.prometheus, stores.victoria):
            result = store.query(f"count(min_over_time(up[{int(DATA_SPAN) + 60}s]))", now)
            if not result or int(float(result[0]["value"][1])) < len(stores.targets):
                return False
        return now - started > DATA_SPAN

    wait_for(spans_enough, DATA_SPAN + 60, "both stores holding every target's samples")
    return stores


def test_the_shards_split_the_targets(filled: Stores) -> None:
    shares = []
    for vmagent in filled.vmagents:
        body = httpx.get(f"{vmagent}/api/v1/targets", timeout=10).json()
        shares.append({t["labels"]["instance"] for t in body["data"]["activeTargets"]})
    # Which shard scrapes a target is a hash of its labels: with a few targets on random ports
    # one shard may get them all, so the test asks only that each is scraped exactly once.
    assert len(shares) == 2, shares
    assert sum(len(share) for share in shares) == len(filled.targets)  # none twice
    assert sorted(set().union(*shares)) == filled.targets  # every target once


def expanded(query: PanelQuery) -> str:
    promql = expand(query.expr, load_dashboards()[query.dashboard])
    return re.sub(r"\[(1m|5m)\]", f"[{WINDOW}]", promql)


def rule_exprs() -> list[tuple[str, str]]:
    path = PROMETHEUS_DIR / "rules" / "recording.yml"
    return [
        (rule["record"], rule["expr"])
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


Labels = tuple[tuple[str, str], ...]


def results(store: Store, promql: str, at: float) -> dict[Labels, float]:
    return {
        tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in store.query(promql, at)
    }


def widened(promql: str) -> str:
    """The query over windows one scrape interval (the longest, 15s) longer."""
    return promql.replace(f"[{WINDOW}]", f"[{WINDOW_SECONDS + SLOWEST_SCRAPE}s]")


def compare(filled: Stores, promql: str) -> None:
    """VictoriaMetrics's answer against Prometheus's, the oracle, on the same samples.

    Without a range function both read the same samples: equal to the last bit. With one, the
    two languages differ by design: Prometheus's rate()/increase() takes the samples inside the
    window and extrapolates to its edges; MetricsQL's starts from the last sample before the
    window and does not extrapolate. So MetricsQL's window effectively starts up to one scrape
    interval earlier, and its answer must lie between Prometheus's over the window and over the
    window one (longest) scrape interval longer, give or take RATE_SLACK for the extrapolation.
    """
    at = time.time() - 5
    # MetricsQL leaves NaN out of its answers (a ratio over no traffic, a quantile of no
    # requests); Prometheus returns them. Either way the panel shows no value there.
    on_prometheus = numbers(results(filled.prometheus, promql, at))
    on_victoria = results(filled.victoria, promql, at)
    assert on_prometheus, f"no data on Prometheus: {promql}"
    if f"[{WINDOW}]" not in promql:
        assert on_victoria.keys() == on_prometheus.keys(), promql
        for labels, expected in on_prometheus.items():  # the same samples, the same arithmetic
            assert on_victoria[labels] == pytest.approx(expected, rel=1e-12), (promql, labels)
        return
    wider = numbers(results(filled.prometheus, widened(promql), at))
    # A series with a single sample in the window has no rate on Prometheus; MetricsQL pairs it
    # with the sample before the window. Any other difference in the series is a finding.
    assert on_prometheus.keys() <= on_victoria.keys() <= on_prometheus.keys() | wider.keys()
    # A series that starts or ends inside the window (another test's database, created or
    # dropped; a new route) has no sample at that edge: Prometheus spreads its increase over
    # the whole window, MetricsQL over the time the series existed. Values are compared where
    # the series spans the window: it had samples before it and has them at its end.
    before = results(filled.prometheus, widened(promql), at - WINDOW_SECONDS - SLOWEST_SCRAPE)
    recent = results(filled.prometheus, promql.replace(f"[{WINDOW}]", "[31s]"), at)
    for labels in on_victoria.keys() & before.keys() & recent.keys():
        got = on_victoria[labels]
        bounds = [v for v in (on_prometheus.get(labels), wider.get(labels)) if v is not None]
        low, high = min(bounds), max(bounds)
        slack = RATE_SLACK * max(abs(low), abs(high)) + 1e-9
        assert low - slack <= got <= high + slack, (promql, dict(labels), got, low, high)


def numbers(result: dict[Labels, float]) -> dict[Labels, float]:
    return {labels: value for labels, value in result.items() if not math.isnan(value)}


@pytest.mark.parametrize("query", panel_queries(), ids=lambda q: q.id)
def test_panel_query_agrees(filled: Stores, query: PanelQuery) -> None:
    compare(filled, expanded(query))


@pytest.mark.parametrize(("record", "expr"), rule_exprs(), ids=[r for r, _ in rule_exprs()])
def test_recording_rule_agrees(filled: Stores, record: str, expr: str) -> None:
    compare(filled, re.sub(r"\[5m\]", f"[{WINDOW}]", expr))


def test_vmalert_records_the_rules(filled: Stores) -> None:
    body = httpx.get(f"{filled.vmalert}/api/v1/rules", timeout=10).json()
    groups = body["data"]["groups"]
    recorded = {r["name"] for group in groups for r in group["rules"] if r["type"] == "recording"}
    assert recorded == {record for record, _ in rule_exprs()}
    for record, _ in rule_exprs():
        wait_for(
            lambda r=record: filled.victoria.query(r, time.time()),
            60,
            f"{record} in VictoriaMetrics",
        )
