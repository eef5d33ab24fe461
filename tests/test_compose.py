"""Compose files, Dockerfile and nginx config: checked by docker-compose and real nginx, then read.

The compose assertions read what `docker-compose config` resolves (variables interpolated, YAML
anchors merged), so they see what compose would run, not just what the file says.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "docker-compose.yml"
PROD = ROOT / "docker-compose.prod.yml"
SECRETS = (
    "POSTGRES_PASSWORD",
    "GRAFANA_ADMIN_USER",
    "GRAFANA_ADMIN_PASSWORD",
    "ALERTMANAGER_PAGE_URL",
)
DUMMY_SECRETS = {name: f"dummy-{name.lower().replace('_', '-')}" for name in SECRETS}

# (host ip, host port, container port); "" is every interface. Services not listed publish nothing.
# The app publishes nothing (it runs as replicas): http://localhost:8000 is nginx's development
# server (nginx/dev.d), which proxies to every replica.
DEV_PORTS = {
    "postgres": {("127.0.0.1", 5432, 5432)},
    "redis": {("127.0.0.1", 6381, 6379)},
    "prometheus": {("127.0.0.1", 9090, 9090)},
    "grafana": {("127.0.0.1", 3001, 3000)},
    "nginx": {("127.0.0.1", 8000, 8000), ("127.0.0.1", 8080, 8080)},
    "alertmanager": {("127.0.0.1", 9093, 9093)},
}
PROD_PORTS = {
    "nginx": {("", 80, 8080)},
    "prometheus": {("127.0.0.1", 9090, 9090)},
    "grafana": {("127.0.0.1", 3001, 3000)},
    "alertmanager": {("127.0.0.1", 9093, 9093)},
}
# A piece of each healthcheck command. The exporters' and the collector's images have no shell or
# client to run one; Tempo's binary checks its own /ready.
HEALTHCHECKS = {
    "fastapi": "http://127.0.0.1:8000/health",
    "postgres": "pg_isready",
    "redis": "redis-cli ping",
    "prometheus": "http://127.0.0.1:9090/-/healthy",
    "grafana": "http://127.0.0.1:3000/api/health",
    "nginx": "/stub_status",
    "tempo": "/tempo -health",
    "alertmanager": "http://127.0.0.1:9093/-/healthy",
}
SERVICES = {
    *HEALTHCHECKS,
    "postgres-exporter",
    "redis-exporter",
    "nginx-exporter",
    "node-exporter",
    "otel-collector",
}
DEPENDS_ON = {
    "fastapi": {"postgres", "redis"},
    "grafana": {"prometheus"},
    "nginx": {"fastapi"},
    "postgres-exporter": {"postgres"},
    "redis-exporter": {"redis"},
    "nginx-exporter": {"nginx"},
}
# Named volume -> (service, mount point).
VOLUMES = {
    "prometheus_data": ("prometheus", "/prometheus"),
    "grafana_data": ("grafana", "/var/lib/grafana"),
    "postgres_data": ("postgres", "/var/lib/postgresql/data"),
    "tempo_data": ("tempo", "/var/tempo"),
    "alertmanager_data": ("alertmanager", "/alertmanager"),
}
# Repository path -> (service, mount point); all mounted read-only.
CONFIG_MOUNTS = {
    "prometheus": ("prometheus", "/etc/prometheus"),
    "grafana/provisioning": ("grafana", "/etc/grafana/provisioning"),
    "nginx/nginx.conf": ("nginx", "/etc/nginx/nginx.conf"),
    "nginx/conf.d": ("nginx", "/etc/nginx/conf.d"),
    "collector/otel-collector.yaml": ("otel-collector", "/etc/otelcol-contrib/config.yaml"),
    "tempo/tempo.yaml": ("tempo", "/etc/tempo/tempo.yaml"),
    "alertmanager": ("alertmanager", "/etc/alertmanager"),
}
ROOT_USERS = {"", "0", "root"}
EXPORT_PATHS = ("collector", "remote-write")


def require_tool(name: str) -> str:
    """Fail in CI, skip elsewhere, when a command the test needs is not installed."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must install it: see .ci/run)")
        pytest.skip(message)
    return path


def run_compose(
    files: Path | Sequence[Path], env_file: Path, secrets: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """`docker-compose -f FILE... ARGS` in the repository; with no file, COMPOSE_FILE decides."""
    # Neither the caller's environment nor a developer's .env may supply or hide a secret, and
    # the caller's OTEL_* (the compose files read the trace sampler from the environment) don't
    # change what the files say.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SECRETS and not k.startswith(("COMPOSE_", "OTEL_"))
    }
    command = [require_tool("docker-compose"), "--env-file", str(env_file)]
    for path in [files] if isinstance(files, Path) else files:
        command += ["-f", str(path)]
    return subprocess.run(
        [*command, *args],
        cwd=ROOT,
        env=env | secrets,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def dev(empty_env_file: Path) -> dict[str, Any]:
    result = run_compose(DEV, empty_env_file, {}, "config")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@pytest.fixture(scope="module")
def prod(empty_env_file: Path) -> dict[str, Any]:
    result = run_compose(PROD, empty_env_file, DUMMY_SECRETS, "config")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@pytest.fixture(params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> dict[str, Any]:
    config: dict[str, Any] = request.getfixturevalue(request.param)
    return config


def ports(service: dict[str, Any]) -> set[tuple[str, int, int]]:
    """Published ports in either the short (`ip:host:container/proto`) or the long syntax."""
    found = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            host_ip, published, target = port.get("host_ip", ""), port["published"], port["target"]
        else:
            parts = str(port).split("/")[0].split(":")
            target = parts[-1]
            published = parts[-2] if len(parts) > 1 else 0
            host_ip = parts[-3] if len(parts) > 2 else ""
        found.add((host_ip, int(published), int(target)))
    return found


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Mount point -> (source, read-only), from the short or the long syntax."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found[volume["target"]] = (volume["source"], bool(volume.get("read_only")))
        else:
            source, target, *mode = volume.split(":")
            found[target] = (source, "ro" in ",".join(mode).split(","))
    return found


def mapped_paths(argument: str, container_paths: dict[str, str]) -> str:
    """`argument` with each container path replaced by its path here, in one pass: a path
    already replaced is not replaced again (the checkout itself may live under /tmp)."""
    pattern = "|".join(re.escape(path) for path in sorted(container_paths, key=len, reverse=True))
    return re.sub(pattern, lambda found: container_paths[found.group(0)], argument)


def prometheus_flags(service: dict[str, Any], workdir: Path) -> dict[str, str]:
    """The flags Prometheus reports (/api/v1/status/flags) when started as the compose service.

    The service's entrypoint, command and environment run through a real shell and Debian's
    prometheus, with the container's paths mapped to the mounts' sources; only the listen address
    is added. Debian's Prometheus is older than the image's, so a flag only the image knows fails.
    """
    binary = require_tool("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    sources = {target: source for target, (source, _) in mounts(service).items()}
    container_paths = {
        "/bin/prometheus": binary,
        "/etc/prometheus/": sources["/etc/prometheus"] + "/",
        "=/prometheus": f"={workdir / 'tsdb'}",
    }

    def on_this_machine(argument: str) -> str:
        # `docker-compose config` writes a literal $ as $$, as the file does.
        return mapped_paths(argument.replace("$$", "$"), container_paths)

    argv = [on_this_machine(part) for part in [*service["entrypoint"], *service["command"]]]
    assert argv[:2] == ["/bin/sh", "-c"], argv
    address = f"127.0.0.1:{free_port()}"
    environment = {"PATH": os.environ["PATH"], **service.get("environment", {})}
    with (workdir / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [*argv, f"--web.listen-address={address}", "--log.level=warn"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    answer = first_answer(
        process, f"http://{address}/api/v1/status/flags", workdir / "prometheus.log"
    )
    flags: dict[str, str] = answer["data"]
    return flags


def first_answer(process: subprocess.Popen[bytes], url: str, log: Path) -> Any:
    """The JSON `url` answers once the process listens; the process is stopped afterwards."""
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(url) as answer:
                    return json.load(answer)
            except OSError:
                assert time.monotonic() < deadline, f"{url} did not answer"
                time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def healthcheck_command(service: dict[str, Any]) -> str:
    test = service.get("healthcheck", {}).get("test", [])
    return " ".join(test) if isinstance(test, list) else str(test)


# --- docker-compose validates both files; production refuses to start without its secrets ---


def test_dev_compose_file_is_valid_without_any_secret(empty_env_file: Path) -> None:
    result = run_compose(DEV, empty_env_file, {}, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_prod_compose_file_is_valid_with_its_secrets(empty_env_file: Path) -> None:
    result = run_compose(PROD, empty_env_file, DUMMY_SECRETS, "config", "-q")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", SECRETS)
@pytest.mark.parametrize("value", ["unset", "empty"])
def test_prod_refuses_to_start_without_each_secret(
    empty_env_file: Path, missing: str, value: str
) -> None:
    secrets = {k: v for k, v in DUMMY_SECRETS.items() if k != missing}
    if value == "empty":
        secrets[missing] = ""
    result = run_compose(PROD, empty_env_file, secrets, "config", "-q")
    assert result.returncode != 0
    # docker-compose ends its error with the message given in `${VAR:?message}`.
    assert result.stderr.strip().endswith(f"{missing} is required, see .env.example"), result.stderr


def test_env_example_lists_every_production_secret() -> None:
    names = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert set(SECRETS) <= names


def test_secrets_reach_every_service_that_needs_them(prod: dict[str, Any]) -> None:
    services = prod["services"]
    password = DUMMY_SECRETS["POSTGRES_PASSWORD"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == password
    assert (
        f"memo:{password}@postgres:5432/memo" in services["fastapi"]["environment"]["DATABASE_URL"]
    )
    assert services["postgres-exporter"]["environment"]["DATA_SOURCE_PASS"] == password
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_USER"] == DUMMY_SECRETS["GRAFANA_ADMIN_USER"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == DUMMY_SECRETS["GRAFANA_ADMIN_PASSWORD"]


def test_dev_grafana_defaults_to_admin_admin(dev: dict[str, Any]) -> None:
    grafana = dev["services"]["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_USER"] == grafana["GF_SECURITY_ADMIN_PASSWORD"] == "admin"


# --- what both files share ---


def test_services_and_pinned_images(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert set(services) == SERVICES
    assert services["fastapi"]["build"]["context"] == str(ROOT)
    for name, service in services.items():
        if name == "fastapi":
            continue
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d[\w.-]*", image), f"{name}: {image} is not pinned"


def test_dev_runs_the_images_production_runs(dev: dict[str, Any], prod: dict[str, Any]) -> None:
    def images(config: dict[str, Any]) -> dict[str, str]:
        return {name: s.get("image", "") for name, s in config["services"].items()}

    assert images(dev) == images(prod)


def test_healthchecks(stack: dict[str, Any]) -> None:
    for name, service in stack["services"].items():
        command = healthcheck_command(service)
        if name in HEALTHCHECKS:
            assert HEALTHCHECKS[name] in command, f"{name}: {command!r}"
        else:
            assert "healthcheck" not in service, name


def test_depends_on_waits_for_healthy_services(stack: dict[str, Any]) -> None:
    services = stack["services"]
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert set(depends_on) == DEPENDS_ON.get(name, set()), name
        for dependency, rule in depends_on.items():
            assert rule == {"condition": "service_healthy"}, f"{name} -> {dependency}"
            assert dependency in HEALTHCHECKS, f"{name} waits on {dependency}, which has none"


def test_volumes_and_config_mounts(stack: dict[str, Any]) -> None:
    services = stack["services"]
    assert set(VOLUMES) <= set(stack["volumes"])
    for volume, (service, target) in VOLUMES.items():
        assert mounts(services[service])[target] == (volume, False), service
    for path, (service, target) in CONFIG_MOUNTS.items():
        assert mounts(services[service])[target] == (str(ROOT / path), True), service
    for name, service in services.items():
        for source, _ in mounts(service).values():
            assert source in stack["volumes"] or Path(source).exists(), f"{name}: {source}"


@pytest.fixture(scope="module")
def flags_as_run(
    dev: dict[str, Any], prod: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, str]]:
    """Prometheus's flags as each stack starts it."""
    return {
        name: prometheus_flags(config["services"]["prometheus"], tmp_path_factory.mktemp(name))
        for name, config in {"dev": dev, "prod": prod}.items()
    }


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_prometheus_runs_the_direct_config_with_exemplars(
    flags_as_run: dict[str, dict[str, str]], name: str
) -> None:
    flags = flags_as_run[name]
    assert flags["config.file"] == str(ROOT / "prometheus" / "prometheus.yml")
    # Exemplars (trace ids on the latency histogram) are dropped without it, even in Prometheus 3.
    assert "exemplar-storage" in flags["enable-feature"].split(",")
    assert flags["web.enable-remote-write-receiver"] == "false"


def test_grafana_has_sign_up_and_anonymous_access_off(stack: dict[str, Any]) -> None:
    grafana = stack["services"]["grafana"]["environment"]
    assert grafana["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_prometheus_targets_are_compose_services(stack: dict[str, Any]) -> None:
    prometheus = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    for job in prometheus["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                assert target.split(":")[0] in stack["services"], f"{job['job_name']}: {target}"
        for discovery in job.get("dns_sd_configs", []):
            assert set(discovery["names"]) <= stack["services"].keys(), job["job_name"]


@pytest.mark.parametrize("name", ["prometheus.yml", *(f"prometheus.{p}.yml" for p in EXPORT_PATHS)])
def test_every_prometheus_config_sends_alerts_to_the_alertmanager_service(
    stack: dict[str, Any], name: str
) -> None:
    alerting = yaml.safe_load((ROOT / "prometheus" / name).read_text())["alerting"]
    targets = [
        t for am in alerting["alertmanagers"] for s in am["static_configs"] for t in s["targets"]
    ]
    assert targets == ["alertmanager:9093"]
    assert "alertmanager" in stack["services"]
    assert ("", 9093, 9093) not in ports(stack["services"]["alertmanager"])


def test_alertmanager_runs_the_rendered_config_with_its_data_on_the_volume(
    stack: dict[str, Any],
) -> None:
    service = stack["services"]["alertmanager"]
    entrypoint = service["entrypoint"]
    assert entrypoint[:2] == ["/bin/sh", "/etc/alertmanager/render.sh"]
    template, rendered, binary = entrypoint[2:]
    assert template == "/etc/alertmanager/alertmanager.yml"
    assert rendered.startswith("/tmp/") and "/tmp" in service["tmpfs"]  # the only writable path
    assert binary == "/bin/alertmanager"
    assert f"--config.file={rendered}" in service["command"]
    assert "--storage.path=/alertmanager" in service["command"]
    assert set(service["environment"]) == {"ALERTMANAGER_PAGE_URL", "ALERTMANAGER_NOTIFY_URL"}


def test_dev_alertmanager_needs_no_receiver(dev: dict[str, Any]) -> None:
    environment = dev["services"]["alertmanager"]["environment"]
    assert environment == {"ALERTMANAGER_PAGE_URL": "", "ALERTMANAGER_NOTIFY_URL": ""}


def test_prod_alertmanager_gets_its_receiver(prod: dict[str, Any]) -> None:
    environment = prod["services"]["alertmanager"]["environment"]
    assert environment["ALERTMANAGER_PAGE_URL"] == DUMMY_SECRETS["ALERTMANAGER_PAGE_URL"]


def start_alertmanager(service: dict[str, Any], workdir: Path) -> subprocess.Popen[bytes]:
    """The compose service's entrypoint, command and environment run by busybox sh (the image's
    shell) and Debian's Alertmanager, with the container's paths mapped to the mounts' sources
    and temporary directories; only the listen address is added."""
    workdir.mkdir(parents=True, exist_ok=True)
    sources = {target: source for target, (source, _) in mounts(service).items()}
    container_paths = {
        "/bin/alertmanager": require_tool("prometheus-alertmanager"),
        "/etc/alertmanager/": sources["/etc/alertmanager"] + "/",
        "/tmp/": f"{workdir}/",
        "=/alertmanager": f"={workdir / 'data'}",
    }

    def on_this_machine(argument: str) -> str:
        return mapped_paths(argument, container_paths)

    argv = [on_this_machine(part) for part in [*service["entrypoint"], *service["command"]]]
    assert argv[0] == "/bin/sh", argv
    argv[0] = require_tool("busybox")
    argv.insert(1, "sh")
    environment = {"PATH": os.environ["PATH"], **service.get("environment", {})}
    address = f"127.0.0.1:{free_port()}"
    with (workdir / "alertmanager.log").open("wb") as log:
        return subprocess.Popen(
            [*argv, f"--web.listen-address={address}"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )


def alertmanager_config(service: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """The config Alertmanager reports running (/api/v2/status) when started as compose would."""
    process = start_alertmanager(service, workdir)
    address = process.args[-1].split("=", 1)[1]  # type: ignore[index]
    answer = first_answer(process, f"http://{address}/api/v2/status", workdir / "alertmanager.log")
    config: dict[str, Any] = yaml.safe_load(answer["config"]["original"])
    return config


def receivers_of(config: dict[str, Any]) -> tuple[list[str], dict[str, list[str]]]:
    """The receivers the routes name (the root's first), and each receiver's webhook URLs."""
    routes = [config["route"]["receiver"]]
    routes += [route["receiver"] for route in config["route"]["routes"]]
    urls = {
        r["name"]: [w["url"] for w in r.get("webhook_configs", [])] for r in config["receivers"]
    }
    return routes, urls


def test_dev_alertmanager_starts_with_no_receiver_and_shows_alerts_only(
    dev: dict[str, Any], tmp_path: Path
) -> None:
    config = alertmanager_config(dev["services"]["alertmanager"], tmp_path)
    routes, _ = receivers_of(config)
    assert set(routes) == {"view-only"}


def test_prod_alertmanager_starts_with_its_receiver(empty_env_file: Path, tmp_path: Path) -> None:
    page = "https://ntfy.example/memo-alerts?auth=a&b=c"
    result = run_compose(
        PROD, empty_env_file, DUMMY_SECRETS | {"ALERTMANAGER_PAGE_URL": page}, "config"
    )
    assert result.returncode == 0, result.stderr
    service = yaml.safe_load(result.stdout)["services"]["alertmanager"]
    routes, urls = receivers_of(alertmanager_config(service, tmp_path))
    assert set(routes) == {"page"}  # warnings too, while ALERTMANAGER_NOTIFY_URL is unset
    assert urls["page"] == [page]


def test_prod_alertmanager_refuses_a_receiver_that_is_not_a_url(
    prod: dict[str, Any], tmp_path: Path
) -> None:
    # DUMMY_SECRETS's value is a word, not a URL.
    process = start_alertmanager(prod["services"]["alertmanager"], tmp_path)
    assert process.wait(timeout=30) == 1
    assert (
        "ALERTMANAGER_PAGE_URL must be an http:// or https:// URL"
        in (tmp_path / "alertmanager.log").read_text()
    )


def test_nginx_ports_agree_with_compose(stack: dict[str, Any]) -> None:
    public, internal = nginx_listen_ports()
    services = stack["services"]
    development = DEV_NGINX_DIR in mounts(services["nginx"])
    expected = {public, *([dev_listen_port()] if development else [])}
    assert {target for _, _, target in ports(services["nginx"])} == expected
    assert f"http://nginx:{internal}/stub_status" in services["nginx-exporter"]["command"][0]
    assert f"http://127.0.0.1:{internal}/stub_status" in healthcheck_command(services["nginx"])


# --- published ports ---


def test_dev_ports_are_the_documented_ports_on_loopback(dev: dict[str, Any]) -> None:
    for name, service in dev["services"].items():
        assert ports(service) == DEV_PORTS.get(name, set()), name


def test_prod_publishes_only_nginx_publicly(prod: dict[str, Any]) -> None:
    # Prometheus and Grafana on loopback only; the app, its metrics, the databases, exporters
    # and nginx's stub_status port are reachable on the compose network only.
    for name, service in prod["services"].items():
        assert ports(service) == PROD_PORTS.get(name, set()), name
        assert service.get("network_mode") != "host", name
        assert "expose" not in service, name


# --- production hardening ---


def test_prod_restart_policy_on_every_service(prod: dict[str, Any]) -> None:
    for name, service in prod["services"].items():
        assert service.get("restart") in {"always", "unless-stopped"}, name


def test_prod_services_run_as_non_root(prod: dict[str, Any]) -> None:
    for name, service in prod["services"].items():
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        if name == "fastapi":
            assert "user" not in service  # the Dockerfile's USER applies (checked below)
            continue
        user = str(service.get("user", "")).split(":")[0]
        assert user not in ROOT_USERS, f"{name} runs as root"


def test_prod_services_that_need_no_writable_root_run_read_only(prod: dict[str, Any]) -> None:
    services = prod["services"]
    for name in ("nginx", "otel-collector", "tempo", "alertmanager"):
        assert services[name]["read_only"] is True, name
    # Tempo writes to its volume only; the volume takes the owner of the image's /var/tempo,
    # which is the image's user.
    assert services["tempo"]["user"] == "10001:10001"


def test_prod_prometheus_admin_and_lifecycle_apis_are_off(
    flags_as_run: dict[str, dict[str, str]],
) -> None:
    flags = flags_as_run["prod"]
    assert flags["web.enable-admin-api"] == flags["web.enable-lifecycle"] == "false"


def test_dev_prometheus_has_the_admin_api_for_snapshots_on_loopback_only(
    dev: dict[str, Any], flags_as_run: dict[str, dict[str, str]]
) -> None:
    assert flags_as_run["dev"]["web.enable-admin-api"] == "true"
    assert all(
        str(port).startswith("127.0.0.1:") for port in dev["services"]["prometheus"]["ports"]
    )


# --- Dockerfile ---


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per stage, continuation lines joined; stage 0 is before any FROM."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def test_dockerfile_final_stage_is_small_and_non_root() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 3, "a build stage and a final stage"
    final = stages[-1]
    assert final[0] == ("FROM", "${PYTHON_IMAGE}")
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm") in stages[0]
    assert stages[1][0] == ("FROM", "${PYTHON_IMAGE} AS build")
    runs = " ".join(arguments for instruction, arguments in final if instruction == "RUN")
    for forbidden in ("apt-get", "gcc", "build-essential", "pip install"):
        assert forbidden not in runs, forbidden
    assert ("COPY", "--from=build /opt/venv /opt/venv") in final
    users = [arguments for instruction, arguments in final if instruction == "USER"]
    assert users, "the final stage sets a USER"
    assert users[-1].split(":")[0] not in ROOT_USERS
    cmd = next(arguments for instruction, arguments in final if instruction == "CMD")
    assert json.loads(cmd)[:2] == ["uvicorn", "service.main:app"]


def test_dockerfile_and_compose_healthchecks_agree(stack: dict[str, Any]) -> None:
    final = dockerfile_stages()[-1]
    healthcheck = next(
        arguments for instruction, arguments in final if instruction == "HEALTHCHECK"
    )
    dockerfile_command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert ["CMD", *dockerfile_command] == stack["services"]["fastapi"]["healthcheck"]["test"]


def test_dockerignore_sends_only_the_package_sources() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    included = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    assert included == {"pyproject.toml", "service", "otel"}
    for instruction, arguments in (step for stage in dockerfile_stages() for step in stage):
        if instruction == "COPY" and not arguments.startswith("--from"):
            *sources, _ = arguments.split()
            assert {source.rstrip("/") for source in sources} <= included, arguments


# --- the app's healthcheck, and nginx run for real with the repository's config ---


DEV_NGINX_DIR = "/etc/nginx/dev.d"


def dev_listen_port() -> int:
    """The port of nginx/dev.d's server, which stands in for the app's own port in development."""
    [port] = re.findall(
        r"^\s*listen (\d+);", (ROOT / "nginx" / "dev.d" / "app.conf").read_text(), re.M
    )
    return int(port)


def test_only_development_mounts_the_development_server(
    dev: dict[str, Any], prod: dict[str, Any]
) -> None:
    assert mounts(dev["services"]["nginx"])[DEV_NGINX_DIR] == (str(ROOT / "nginx" / "dev.d"), True)
    assert DEV_NGINX_DIR not in mounts(prod["services"]["nginx"])
    assert f"include {DEV_NGINX_DIR}/*.conf;" in (ROOT / "nginx" / "nginx.conf").read_text()


def test_app_can_be_scaled(stack: dict[str, Any]) -> None:
    """`--scale fastapi=N` needs no fixed container name and no published host port."""
    app = stack["services"]["fastapi"]
    assert "container_name" not in app
    assert ports(app) == set()


def nginx_listen_ports() -> tuple[int, int]:
    """(public, internal): the server that proxies to the app and the one with stub_status."""
    text = re.sub(r"#.*", "", (ROOT / "nginx" / "conf.d" / "memo.conf").read_text())
    public = internal = 0
    for block in re.split(r"^server \{", text, flags=re.MULTILINE)[1:]:
        listen = re.search(r"^\s*listen (\d+)", block, re.MULTILINE)
        assert listen, block
        port = int(listen[1])
        if "stub_status;" in block:
            assert "deny all;" in block, "stub_status is refused outside private ranges"
            internal = port
        if "proxy_pass" in block:
            assert "stub_status" not in block
            public = port
    assert public and internal and public != internal
    return public, internal


@dataclass
class FakeApp:
    """Stands in for the app: answers `status` and records every request's path."""

    status: int = 200
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)

    def start(self) -> int:
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # The path the app routes on: uvicorn %-decodes it, as here.
                path = unquote(urlsplit(self.path).path)
                app.seen.append((self.path, path, self.headers.get("X-Forwarded-For")))
                self.send_response(app.status)
                self.send_header("Content-Length", "3")
                self.end_headers()
                self.wfile.write(b"app")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.server.server_address[1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Nginx:
    public: int
    internal: int
    app: FakeApp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: each socket stays bound until all are chosen, or the kernel
    may hand out one port twice (nginx then serves both server blocks on it)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def rewrite(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in text, f"{old!r} is gone from the nginx config: update this test"
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (None, False)])
def test_app_healthcheck_command(dev: dict[str, Any], status: int | None, healthy: bool) -> None:
    """The python one-liner, run here against a server answering 200, 503, or nothing at all."""
    _, python, flag, code = dev["services"]["fastapi"]["healthcheck"]["test"]
    assert (python, flag) == ("python", "-c")
    app = FakeApp(status or 200)
    port = app.start() if status else free_port()
    try:
        code = code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, timeout=30, check=False
        )
        assert (result.returncode == 0) is healthy, result.stderr
    finally:
        if status:
            app.stop()


@pytest.fixture(scope="module")
def nginx() -> Iterator[Nginx]:
    """nginx with the repository's two files; only addresses and paths are rewritten.

    As the container does, it runs as an unprivileged user (nobody, when the tests run as root)
    with nothing writable but its own temp directory, which stands in for the /tmp tmpfs.
    """
    binary = require_tool("nginx")
    app = FakeApp()
    app_port = app.start()
    public, internal = nginx_listen_ports()
    addresses = dict(zip((public, internal), free_ports(2), strict=True))
    workdir = Path(tempfile.mkdtemp(prefix="nginx-test-"))
    (workdir / "conf.d").mkdir()
    main = (ROOT / "nginx" / "nginx.conf").read_text()
    (workdir / "nginx.conf").write_text(
        rewrite(main, {"/tmp/": f"{workdir}/", "/etc/nginx/conf.d/": f"{workdir}/conf.d/"})
    )
    site = rewrite(
        (ROOT / "nginx" / "conf.d" / "memo.conf").read_text(),
        {"http://fastapi:8000": f"http://127.0.0.1:{app_port}"},
    )
    site = re.sub(r"listen (\d+)", lambda m: f"listen 127.0.0.1:{addresses[int(m[1])]}", site)
    (workdir / "conf.d" / "memo.conf").write_text(site)
    (workdir / "access.log").touch()
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        workdir.chmod(0o755)
        as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    command = [binary, "-e", "stderr", "-p", str(workdir), "-c", str(workdir / "nginx.conf")]
    with (workdir / "access.log").open("w") as stdout, (workdir / "error.log").open("w") as stderr:
        process = subprocess.Popen(
            [*command, "-g", "daemon off;"], stdout=stdout, stderr=stderr, **as_user
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, (workdir / "error.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", addresses[internal]), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.05)
        yield Nginx(addresses[public], addresses[internal], app)
    finally:
        process.terminate()
        process.wait(timeout=10)
        app.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def get(port: int, raw_path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", raw_path)  # sent as written, no normalising on this side
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


METRICS_PATHS = [
    "/metrics",
    "/metrics/",
    "/metrics?format=openmetrics",
    "//metrics",
    "/./metrics",
    "/memos/../metrics",
    "/%6Detrics",
    "/%6d%65%74%72%69%63%73",
    "/metrics%2F",
    "/metrics/../metrics/x",
]


def test_nginx_proxies_the_app(nginx: Nginx) -> None:
    for path in ("/", "/health", "/memos/?q=metrics"):
        assert get(nginx.public, path) == (200, "app"), path
    assert nginx.app.seen[-1][0] == "/memos/?q=metrics"
    assert nginx.app.seen[-1][2] == "127.0.0.1"  # X-Forwarded-For


@pytest.mark.parametrize("path", METRICS_PATHS)
def test_nginx_never_serves_metrics_publicly(nginx: Nginx, path: str) -> None:
    status, _ = get(nginx.public, path)
    assert status == 404
    forwarded = [decoded for _, decoded, _ in nginx.app.seen]
    assert not [p for p in forwarded if p == "/metrics" or p.startswith("/metrics/")], forwarded


def test_nginx_stub_status_is_on_the_internal_port_only(nginx: Nginx) -> None:
    status, body = get(nginx.internal, "/stub_status")
    assert status == 200
    assert body.startswith("Active connections:")
    status, body = get(nginx.public, "/stub_status")
    assert "Active connections" not in body  # the public port hands it to the app
    assert get(nginx.internal, "/")[0] == 404
    assert get(nginx.internal, "/metrics")[0] == 404
