"""docker-compose.victoriametrics.yml, resolved by docker-compose on both stacks, and its Grafana
datasources: the shards cover the scrape once, vmalert runs Prometheus's rule files, the images
are the version the tests run (Debian's victoria-metrics package), exemplars stay reachable."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_compose import DEV, DUMMY_SECRETS, PROD, ROOT, require_tool, run_compose

OVERRIDE = ROOT / "docker-compose.victoriametrics.yml"
DATASOURCES = ROOT / "grafana" / "victoriametrics" / "datasources.yml"
BASE_DATASOURCE = ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROMETHEUS_YML = ROOT / "prometheus" / "prometheus.yml"


@pytest.fixture(scope="module", params=["dev", "prod"])
def services(request: pytest.FixtureRequest, empty_env_file: Path) -> dict[str, Any]:
    base, secrets = (DEV, {}) if request.param == "dev" else (PROD, DUMMY_SECRETS)
    result = run_compose([base, OVERRIDE], empty_env_file, secrets, "config")
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)["services"]
    return resolved


def flags(service: dict[str, Any]) -> dict[str, str]:
    return dict(flag.partition("=")[::2] for flag in service["command"])


def test_shards_split_the_scrape_once(services: dict[str, Any]) -> None:
    shards = [flags(s) for name, s in services.items() if name.startswith("vmagent")]
    assert len(shards) >= 2
    assert {f["-promscrape.cluster.membersCount"] for f in shards} == {str(len(shards))}
    assert sorted(int(f["-promscrape.cluster.memberNum"]) for f in shards) == list(
        range(len(shards))
    )
    for shard in shards:  # Prometheus's own scrape config, all of it
        assert shard["-promscrape.config"] == "/etc/prometheus/prometheus.yml"
        assert shard["-remoteWrite.url"] == "http://victoriametrics:8428/api/v1/write"


def test_vmalert_runs_prometheus_rule_files(services: dict[str, Any]) -> None:
    vmalert = flags(services["vmalert"])
    rule_files = yaml.safe_load(PROMETHEUS_YML.read_text())["rule_files"]
    assert all(Path(path).parent.name == "rules" for path in rule_files)
    assert vmalert["-rule"] == "/etc/prometheus/rules/*.yml"
    assert (
        vmalert["-datasource.url"] == vmalert["-remoteWrite.url"] == "http://victoriametrics:8428"
    )


def test_vmalert_accepts_the_rule_files() -> None:
    vmalert = require_tool("vmalert")
    result = subprocess.run(
        [vmalert, f"-rule={ROOT / 'prometheus' / 'rules'}/*.yml", "-dryRun"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_images_are_the_tested_version(services: dict[str, Any]) -> None:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "victoria-metrics"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, "victoria-metrics is not installed (see .ci/run)"
    tested = re.match(r"(\d+\.\d+\.\d+)", result.stdout)
    assert tested
    for name in ("victoriametrics", "vmagent-0", "vmagent-1", "vmalert"):
        assert services[name]["image"].endswith(f":v{tested[1]}"), name


def test_dashboards_read_victoriametrics_and_exemplars_stay_on_prometheus(
    services: dict[str, Any],
) -> None:
    mount = "/etc/grafana/provisioning/datasources/prometheus.yml"
    assert f"{DATASOURCES}:{mount}:ro" in services["grafana"]["volumes"]
    replaced = {d["uid"]: d for d in yaml.safe_load(BASE_DATASOURCE.read_text())["datasources"]}
    override = {d["uid"]: d for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    # Every datasource of the replaced file, same name and uid (dashboards find them by either),
    # now on VictoriaMetrics; nothing but the address and the exemplar link changes.
    for uid, datasource in replaced.items():
        moved = override[uid]
        assert moved["url"] == "http://victoriametrics:8428", uid
        assert {k: v for k, v in moved.items() if k not in ("url", "jsonData")} == {
            k: v for k, v in datasource.items() if k not in ("url", "jsonData")
        }
        assert moved["jsonData"] == {"timeInterval": datasource["jsonData"]["timeInterval"]}
    [extra] = override.keys() - replaced.keys()
    exemplars = override[extra]
    assert exemplars["url"] == replaced["prometheus"]["url"]
    assert exemplars["jsonData"] == replaced["prometheus"]["jsonData"]
    assert [uid for uid, d in override.items() if d.get("isDefault")] == ["prometheus"]
