"""alertmanager/: the routes tests cover every alert the rules define, and render.sh, run by the
shell the official image has (busybox), gives configs that amtool accepts and routes as documented.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERTMANAGER_DIR = ROOT / "alertmanager"
TEMPLATE = ALERTMANAGER_DIR / "alertmanager.yml"
RENDER = ALERTMANAGER_DIR / "render.sh"
ROUTES = ALERTMANAGER_DIR / "tests" / "routes.txt"
RECEIVER_BY_SEVERITY = {"critical": "page", "warning": "notify"}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (see .ci/run)")
    return path


def alert_rules() -> list[dict[str, object]]:
    rules = []
    for path in sorted((ROOT / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [rule for rule in group["rules"] if "alert" in rule]
    return rules


def route_cases() -> list[tuple[str, dict[str, str]]]:
    cases = []
    for line in ROUTES.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            receiver, *labels = line.split()
            cases.append((receiver, dict(label.split("=", 1) for label in labels)))
    return cases


def test_every_alert_has_a_severity_the_routes_know() -> None:
    for rule in alert_rules():
        labels = rule.get("labels", {})
        assert isinstance(labels, dict)
        assert labels.get("severity") in RECEIVER_BY_SEVERITY, rule["alert"]


def test_routes_tests_pin_every_alert_with_its_rules_severity() -> None:
    cases = {labels["alertname"]: (receiver, labels) for receiver, labels in route_cases()}
    for rule in alert_rules():
        assert rule["alert"] in cases, f"{rule['alert']} has no line in {ROUTES.name}"
        receiver, labels = cases[str(rule["alert"])]
        severity = rule["labels"]["severity"]  # type: ignore[index]
        assert labels["severity"] == severity, rule["alert"]
        assert receiver == RECEIVER_BY_SEVERITY[severity], rule["alert"]


def render(tmp_path: Path, **receivers: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTMANAGER_")}
    return subprocess.run(
        [tool("busybox"), "sh", str(RENDER), str(TEMPLATE), str(tmp_path / "out.yml")],
        env=env | receivers,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def routed_to(config: Path, **labels: str) -> str:
    argv = [tool("amtool"), "config", "routes", "test", f"--config.file={config}"]
    argv += [f"{name}={value}" for name, value in labels.items()]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    return result.stdout.strip()


def webhook_urls(config: Path) -> dict[str, list[str]]:
    receivers = yaml.safe_load(config.read_text())["receivers"]
    return {r["name"]: [w["url"] for w in r.get("webhook_configs", [])] for r in receivers}


@pytest.mark.parametrize(
    ("receivers", "critical", "warning"),
    [
        ({}, "view-only", "view-only"),
        ({"ALERTMANAGER_PAGE_URL": "https://ntfy.example/memo?x=1&y=2"}, "page", "page"),
        (
            {
                "ALERTMANAGER_PAGE_URL": "https://ntfy.example/memo",
                "ALERTMANAGER_NOTIFY_URL": "http://[::1]:8065/hooks/abc%20d",
            },
            "page",
            "notify",
        ),
    ],
    ids=["none", "page-only", "both"],
)
def test_render_fills_in_the_urls_or_routes_around_a_missing_receiver(
    tmp_path: Path, receivers: dict[str, str], critical: str, warning: str
) -> None:
    result = render(tmp_path, **receivers)
    assert result.returncode == 0, result.stderr
    config = tmp_path / "out.yml"
    check = subprocess.run(
        [tool("amtool"), "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert routed_to(config, alertname="TargetDown", severity="critical") == critical
    assert routed_to(config, alertname="X", severity="warning") == warning
    assert routed_to(config, alertname="X") == warning
    urls = webhook_urls(config)
    for name, variable in (
        ("page", "ALERTMANAGER_PAGE_URL"),
        ("notify", "ALERTMANAGER_NOTIFY_URL"),
    ):
        if variable in receivers:
            assert urls[name] == [receivers[variable]]


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/", "example.org/hook", 'http://example.org/"quoted"', "http://a b/"],
)
def test_render_refuses_what_is_not_a_url(tmp_path: Path, url: str) -> None:
    result = render(tmp_path, ALERTMANAGER_PAGE_URL=url)
    assert result.returncode == 1
    assert "ALERTMANAGER_PAGE_URL" in result.stderr
    assert not (tmp_path / "out.yml").exists()


def test_render_runs_the_command_after_the_paths(tmp_path: Path) -> None:
    argv = [tool("busybox"), "sh", str(RENDER), str(TEMPLATE), str(tmp_path / "out.yml")]
    result = subprocess.run(
        [*argv, "sh", "-c", 'echo "started with $0"', "rendered"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "started with rendered\n"
    assert (tmp_path / "out.yml").is_file()
