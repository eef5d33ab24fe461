"""Three app replicas on three hosts, found by Prometheus through DNS, counted exactly.

What compose does after `docker-compose up -d --scale fastapi=3`, with real processes: each
replica (uvicorn, two workers) runs in a network namespace of its own with its own address and
port 8000; a real DNS server (dnsmasq) answers `fastapi` with the three addresses, as Docker's DNS
does; Prometheus runs in a namespace whose resolv.conf points at that server, with the project's
prometheus.yml (the app's job and its dns_sd_configs as they are; the jobs of services this test
does not run removed, intervals shortened to 1s) and rules; and the project's nginx, resolving
through the same server, spreads the load. Then every query of the app's dashboard and every
recording rule must add up to the requests the test sent.
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from stack_support import PROMETHEUS_DIR, PROMETHEUS_YML, require_binary

from scripts.dashboards import BUILTIN_VARIABLES, expand, load_dashboards, panel_queries
from tests.dns_server import Dnsmasq
from tests.netns import Lan, lan
from tests.nginx_site import NginxSite, listen_ports, start_nginx
from tests.servers import Processes, start_service, wait_for

pytestmark = pytest.mark.e2e

REPLICAS = 3
WORKERS = 2
APP_PORT = 8000  # the port of the dns_sd_config, unchanged
INTERVAL = 1.0  # scrape and evaluation interval here (the project's are 5s and 15s)
ROUNDS = 40  # of REQUESTS, through nginx
TAIL = 20.0  # seconds of flat counters after the load, so rate() windows end on data
MAIN = "fastapi-dashboard.json"
Series = tuple[str, str, str]  # method, endpoint, status_code


@dataclass
class Replicas:
    network: Lan
    addresses: list[str]
    prometheus: str
    nginx: NginxSite
    processes: Processes

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = at
        body = httpx.get(f"{self.prometheus}/api/v1/query", params=params, timeout=10).json()
        assert body["status"] == "success", f"{promql}: {body}"
        return list(body["data"]["result"])

    def totals(self) -> dict[Series, float]:
        result = self.query("sum by (method, endpoint, status_code) (fastapi_requests_total)")
        return {_series(r["metric"]): float(r["value"][1]) for r in result}


def _series(labels: dict[str, str]) -> Series:
    return labels["method"], labels["endpoint"], labels["status_code"]


def prometheus_config() -> dict[str, Any]:
    """The project's prometheus.yml: the app's job as it is, timing shortened, other jobs gone."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / path) for path in config["rule_files"]]
    [app_job] = [job for job in config["scrape_configs"] if job["job_name"] == "fastapi"]
    assert "static_configs" not in app_job, "the replicas must be discovered, not listed"
    app_job["scrape_interval"] = "1s"
    for discovery in app_job["dns_sd_configs"]:
        discovery["refresh_interval"] = "1s"
    config["scrape_configs"] = [app_job]
    config.pop("alerting", None)  # no Alertmanager here
    return config


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    prometheus_binary = require_binary("prometheus")
    logs = tmp_path_factory.mktemp("replicas")
    processes = Processes(logs)
    database = f"sqlite+aiosqlite:///{logs / 'memos.db'}"  # one database, as in compose
    with lan() as network:
        try:
            dns = Dnsmasq(processes, network.add("dns", 53))
            addresses = [network.add(f"app{n}", 11 + n) for n in range(REPLICAS)]
            for n, address in enumerate(addresses):
                start_service(
                    processes,
                    f"app{n}",
                    {"DATABASE_URL": database},
                    workers=WORKERS,
                    host=address,
                    port=APP_PORT,
                    argv_prefix=network.exec(f"app{n}", []),
                )
            dns.start({"fastapi": addresses}, network.exec("dns", []))
            edge = network.add("edge", 80)
            nginx = start_nginx(
                processes,
                host=edge,
                ports={port: port for port in listen_ports()},
                resolver=dns.address,
                app_port=APP_PORT,
                argv_prefix=network.exec("edge", []),
            )
            prometheus = start_prometheus(processes, network, prometheus_binary, dns.address)
            yield Replicas(network, addresses, prometheus, nginx, processes)
        finally:
            processes.stop_all()


def start_prometheus(processes: Processes, network: Lan, binary: str, nameserver: str) -> str:
    address = network.add("prom", 90)
    network.set_resolver("prom", nameserver)
    config = processes.logs / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config()))
    argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={processes.logs / 'tsdb'}"]
    argv += [f"--web.listen-address={address}:9090", "--log.level=warn"]
    processes.start("prometheus", network.exec("prom", argv))
    url = f"http://{address}:9090"

    def ready() -> bool:
        processes.check_alive()
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200

    wait_for(ready, 30, "prometheus ready")
    return url


# (method, path, the endpoint label it gets); memo 1 exists once the first POST is in.
REQUESTS = [
    ("POST", "/memos/", "/memos/"),
    ("GET", "/memos/", "/memos/"),
    ("GET", "/memos/1", "/memos/{memo_id}"),
    ("GET", "/memos/999999", "/memos/{memo_id}"),
    ("GET", "/no-such-page", "<unmatched>"),
]


def send(base_url: str, rounds: int) -> collections.Counter[Series]:
    """`rounds` of REQUESTS; the tally of what was sent, by the labels each must get."""
    sent: collections.Counter[Series] = collections.Counter()
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for n in range(rounds):
            for method, path, endpoint in REQUESTS:
                body = {"title": f"memo {n}", "content": "replicas"} if method == "POST" else None
                response = client.request(method, path, json=body)
                assert response.status_code < 500, response.text
                sent[method, endpoint, str(response.status_code)] += 1
    return sent


@dataclass
class Loaded:
    replicas: Replicas
    sent: collections.Counter[Series]
    before: dict[Series, float]
    per_instance: dict[str, float]
    started: float  # after the warm-up's last scrape, before the load (unix seconds)
    at: float  # when the queries are evaluated


@pytest.fixture(scope="module")
def loaded(replicas: Replicas) -> Loaded:
    def all_discovered() -> bool:
        result = replicas.query('count(up{job="fastapi"} == 1)')
        return bool(result) and int(result[0]["value"][1]) == REPLICAS

    wait_for(all_discovered, 30, f"{REPLICAS} replicas discovered and up")
    # Every series on every replica exists and is scraped before the load: Prometheus cannot
    # know what a new series counted before its first sample, so the window starts after that.
    warm_up = collections.Counter[Series]()
    for address in replicas.addresses:
        warm_up += send(f"http://{address}:{APP_PORT}", 1)
    wait_for(
        lambda: all(replicas.totals().get(k, 0) >= v for k, v in warm_up.items()), 30, "warm-up"
    )
    warmed_up = time.time()
    # One more scrape of every replica: each series' first sample after `warmed_up` precedes the
    # load, so a window from `warmed_up` sees the whole load and nothing of the warm-up.
    wait_for(lambda: last_scrape(replicas) > warmed_up, 30, "a scrape after the warm-up")
    before = replicas.totals()
    instance_before = _per_instance(replicas)
    sent = send(replicas.nginx.url(8080), ROUNDS)
    ended = time.time()
    expected = collections.Counter(before) + collections.Counter(sent)
    wait_for(lambda: replicas.totals() == expected, 30, f"Prometheus counting {dict(expected)}")
    wait_for(lambda: last_scrape(replicas) > ended + TAIL, 60, "replicas scraped after the load")
    after = _per_instance(replicas)
    per_instance = {i: after[i] - instance_before.get(i, 0.0) for i in after}
    return Loaded(replicas, sent, before, per_instance, warmed_up, time.time())


def last_scrape(replicas: Replicas) -> float:
    """When the replica scraped longest ago was last scraped."""
    result = replicas.query('min(timestamp(up{job="fastapi"}))')
    return float(result[0]["value"][1]) if result else 0.0


def _per_instance(replicas: Replicas) -> dict[str, float]:
    result = replicas.query("sum by (instance) (fastapi_requests_total)")
    return {r["metric"]["instance"]: float(r["value"][1]) for r in result}


def test_each_replica_is_its_own_instance(loaded: Loaded) -> None:
    replicas = loaded.replicas
    replicas.processes.check_alive()  # every replica, dnsmasq, nginx and Prometheus still up
    targets = httpx.get(f"{replicas.prometheus}/api/v1/targets", timeout=5).json()["data"]
    instances = sorted(t["labels"]["instance"] for t in targets["activeTargets"])
    assert instances == sorted(f"{address}:{APP_PORT}" for address in replicas.addresses)


def test_counts_are_exact_and_the_load_is_spread(loaded: Loaded) -> None:
    total = sum(loaded.sent.values())
    assert sum(loaded.per_instance.values()) == total
    assert len(loaded.per_instance) == REPLICAS
    for instance, count in loaded.per_instance.items():
        assert count >= total / REPLICAS / 2, (instance, loaded.per_instance)


def test_instance_variable_lists_every_replica(loaded: Loaded) -> None:
    result = loaded.replicas.query("count by (instance) (fastapi_requests_total)")
    assert {r["metric"]["instance"] for r in result} == set(loaded.per_instance)


def window(loaded: Loaded) -> float:
    """From just before the load to now, in seconds (ms precision): what the panels sum over."""
    return round(loaded.at - loaded.started, 3)


def promql_range(seconds: float) -> str:
    return f"[{round(seconds * 1000)}ms]"


def tolerance(loaded: Loaded) -> float:
    """How far Prometheus's extrapolated rate()/increase() may stray from the exact count.

    Prometheus extends each series' increase beyond its first and last sample in the window by
    up to half a scrape interval at each end (less when the counter would reach zero), so the
    result may stray from the true count by up to one interval's share of the window at each end.
    """
    return 2 * INTERVAL / (loaded.at - loaded.started)


def expected_by(loaded: Loaded, labels: tuple[str, ...]) -> dict[tuple[str, ...], float]:
    names = ("method", "endpoint", "status_code")
    grouped: collections.Counter[tuple[str, ...]] = collections.Counter()
    for series, count in loaded.sent.items():
        grouped[tuple(series[names.index(label)] for label in labels)] += count
    return dict(grouped)


def panel_expr(panel: str, ref: str, seconds: float) -> str:
    [query] = [q for q in panel_queries() if (q.dashboard, q.panel, q.ref_id) == (MAIN, panel, ref)]
    dashboard = load_dashboards()[MAIN]
    expr = expand(query.expr, dashboard)
    for name in ("__rate_interval", "__range"):
        expr = expr.replace(f"[{BUILTIN_VARIABLES[name]}]", promql_range(seconds))
    return expr


def assert_close(actual: float, expected: float, tolerance: float, what: str) -> None:
    assert abs(actual - expected) <= expected * tolerance + 0.5, (what, actual, expected, tolerance)


@pytest.mark.parametrize(
    ("panel", "labels", "scale"),
    [
        ("Total Requests per Second", (), "rate"),
        ("Request Rate", ("method", "endpoint", "status_code"), "rate"),
        ("Response Status Codes", ("status_code",), "increase"),
        ("Requests by Endpoint", ("endpoint",), "increase"),
    ],
)
def test_request_panels_add_up_to_the_requests_sent(
    loaded: Loaded, panel: str, labels: tuple[str, ...], scale: str
) -> None:
    seconds = window(loaded)
    result = loaded.replicas.query(panel_expr(panel, "A", seconds), at=loaded.at)
    factor = seconds if scale == "rate" else 1
    got = {
        tuple(r["metric"].get(label, "") for label in labels): float(r["value"][1]) * factor
        for r in result
    }
    expected = expected_by(loaded, labels)
    # Series that only counted the start-up /health checks show 0 over this window.
    assert {k for k, v in got.items() if v > 0.5} == set(expected), got
    for key, count in expected.items():
        assert_close(got[key], count, tolerance(loaded), f"{panel} {key}")


def test_gauge_panels(loaded: Loaded) -> None:
    replicas = loaded.replicas
    [memos] = replicas.query(panel_expr("Total Memos", "A", 60), at=loaded.at)
    # The table's row count, once, not per replica: every POST made one memo.
    posts = sum(count for (method, _, _), count in loaded.sent.items() if method == "POST")
    assert float(memos["value"][1]) == posts + REPLICAS  # and one per replica in the warm-up
    [connections] = replicas.query(panel_expr("Active Connections", "A", 60), at=loaded.at)
    assert float(connections["value"][1]) == 0  # idle: no connection checked out anywhere


def test_latency_panel_covers_every_replica(loaded: Loaded) -> None:
    seconds = window(loaded)
    values = []
    for ref in ("A", "B"):
        [series] = loaded.replicas.query(
            panel_expr("Request Duration (p95 and p50)", ref, seconds), at=loaded.at
        )
        values.append(float(series["value"][1]))
    p95, p50 = values
    assert 0 < p50 <= p95 <= 10.0
    # The quantile reads the summed buckets: their count is every request, from all replicas.
    count = loaded.replicas.query(
        f"sum(increase(fastapi_request_duration_seconds_count{promql_range(seconds)}))",
        at=loaded.at,
    )
    assert_close(float(count[0]["value"][1]), sum(loaded.sent.values()), tolerance(loaded), "count")


def recording_rules() -> list[dict[str, str]]:
    [group] = yaml.safe_load((PROMETHEUS_DIR / "rules" / "recording.yml").read_text())["groups"]
    return list(group["rules"])


def test_recording_rules_aggregate_the_replicas(loaded: Loaded) -> None:
    """Each rule's expression, evaluated over the load, gives one series per job (or per
    endpoint/status) that adds up the replicas; Prometheus's own evaluations exist too."""
    seconds = window(loaded)
    total = sum(loaded.sent.values())
    for rule in recording_rules():
        expr = re.sub(r"\[5m\]", promql_range(seconds), rule["expr"])
        expr = expr.replace(
            "job:fastapi_requests:rate5m",
            f"sum by (job) (rate(fastapi_requests_total{promql_range(seconds)}))",
        )
        result = loaded.replicas.query(expr, at=loaded.at)
        assert result, rule["record"]
        assert all("instance" not in r["metric"] for r in result), rule["record"]
        values = {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in result}
        if rule["record"] == "job:fastapi_requests:rate5m":
            assert_close(values[(("job", "fastapi"),)] * seconds, total, tolerance(loaded), expr)
        elif rule["record"] == "job:fastapi_requests_5xx:ratio_rate5m":
            assert values == {(("job", "fastapi"),): 0.0}
        recorded = loaded.replicas.query(rule["record"])
        assert recorded and all(r["metric"]["job"] == "fastapi" for r in recorded), rule["record"]


def test_a_replica_that_stops_answering_is_a_target_down(loaded: Loaded) -> None:
    """Last: it stops a replica. The DNS server still names it (as Docker's does for a running
    container that hangs), so its target goes down and the project's TargetDown alert, per
    instance, becomes pending for that replica alone."""
    replicas = loaded.replicas
    replicas.processes.stop("app0")
    down = f"{replicas.addresses[0]}:{APP_PORT}"

    def pending() -> set[str]:
        result = replicas.query('ALERTS{alertname="TargetDown", job="fastapi"}')
        return {r["metric"]["instance"] for r in result}

    assert wait_for(pending, 30, "TargetDown for the stopped replica") == {down}
