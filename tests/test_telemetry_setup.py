"""The public API: configuration from OTEL_*, disabling, isolation, custom metrics, shutdown."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from otel import TelemetryConfig, TelemetryConfigError, setup_telemetry
from otel.config import otlp_protocol, parse_exporters
from tests.conftest import make_client
from tests.helpers import scrape


def app_with_route() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    return app


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ("prometheus",)),
        ("prometheus", ("prometheus",)),
        ("otlp, prometheus", ("otlp", "prometheus")),
        ("none", ()),
        ("OTLP,otlp", ("otlp",)),
    ],
)
def test_exporters_parse_as_a_comma_list(value: str, expected: tuple[str, ...]) -> None:
    assert parse_exporters(value) == expected


def test_unknown_exporter_names_the_valid_ones() -> None:
    with pytest.raises(TelemetryConfigError, match=r"zipkin.*valid values are prometheus, otlp"):
        TelemetryConfig.from_env({"OTEL_METRICS_EXPORTER": "prometheus,zipkin"})


def test_bad_boolean_and_interval_are_refused() -> None:
    with pytest.raises(TelemetryConfigError, match="OTEL_SDK_DISABLED"):
        TelemetryConfig.from_env({"OTEL_SDK_DISABLED": "yes"})
    with pytest.raises(TelemetryConfigError, match="OTEL_METRIC_EXPORT_INTERVAL"):
        TelemetryConfig.from_env({"OTEL_METRIC_EXPORT_INTERVAL": "soon"})


def test_service_name_comes_from_the_environment_or_the_default() -> None:
    assert TelemetryConfig.from_env({}).service_name == "fastapi"
    assert TelemetryConfig.from_env({"OTEL_SERVICE_NAME": "memo"}).service_name == "memo"


def test_sdk_disabled_turns_telemetry_off_and_the_service_works(sqlite_url: str) -> None:
    config = TelemetryConfig.from_env({"OTEL_SDK_DISABLED": "true"})
    with make_client(sqlite_url, config=config) as api:
        assert api.post("/memos/", json={"title": "t", "content": "c"}).status_code == 201
        assert api.get("/health").status_code == 200
        assert api.get("/metrics").status_code == 404
        assert not api.app.state.telemetry.enabled  # type: ignore[attr-defined]


def test_metrics_exporter_none_serves_no_metrics_but_counts_nothing_wrongly() -> None:
    app = app_with_route()
    telemetry = setup_telemetry(app, TelemetryConfig.from_env({"OTEL_METRICS_EXPORTER": "none"}))
    with TestClient(app) as client:
        assert client.get("/ping").status_code == 200
        assert client.get("/metrics").status_code == 404
    telemetry.shutdown()


def test_two_apps_in_one_process_do_not_share_or_collide() -> None:
    first, second = app_with_route(), app_with_route()
    first_telemetry = setup_telemetry(first, TelemetryConfig())
    second_telemetry = setup_telemetry(second, TelemetryConfig())
    with TestClient(first) as one, TestClient(second) as two:
        for _ in range(3):
            one.get("/ping")
        two.get("/ping")
        labels = {"method": "GET", "endpoint": "/ping", "status_code": "200"}
        assert scrape(one).value("fastapi_requests_total", **labels) == 3
        assert scrape(two).value("fastapi_requests_total", **labels) == 1
        first_telemetry.shutdown()
        first_telemetry.shutdown()  # idempotent
        two.get("/ping")
        assert scrape(two).value("fastapi_requests_total", **labels) == 2
    second_telemetry.shutdown()


def test_an_added_metric_appears_under_the_authors_name() -> None:
    app = app_with_route()
    telemetry = setup_telemetry(app, TelemetryConfig())
    logins = telemetry.meter.create_counter("club.logins", description="Logins")
    queue = telemetry.meter.create_histogram("club.upload.size", unit="By")
    logins.add(2, {"provider": "github"})
    queue.record(512.0)
    with TestClient(app) as client:
        metrics = scrape(client)
    assert metrics.value("club_logins_total", provider="github") == 2
    assert metrics.value("club_upload_size_bytes_count") == 1
    telemetry.shutdown()


def test_importing_the_service_builds_nothing(tmp_path: str) -> None:
    code = (
        "import os, service.main as m; "
        "assert m._app.cache_info().currsize == 0; "
        "assert not os.path.exists('data'); print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1])},
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_traces_exporter_and_otlp_protocol_are_validated() -> None:
    with pytest.raises(TelemetryConfigError, match=r"OTEL_TRACES_EXPORTER.*jaeger.*otlp, console"):
        TelemetryConfig.from_env({"OTEL_TRACES_EXPORTER": "jaeger"})
    assert TelemetryConfig.from_env({"OTEL_TRACES_EXPORTER": "otlp"}).tracing
    assert not TelemetryConfig.from_env({}).tracing
    with pytest.raises(TelemetryConfigError, match=r"http/json.*grpc, http/protobuf"):
        otlp_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "METRICS")
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
    }
    assert otlp_protocol(env, "TRACES") == "http/protobuf"
    assert otlp_protocol(env, "METRICS") == "grpc"
