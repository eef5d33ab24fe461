"""The club's dashboard files, dropped into the provisioning unchanged, beside ours: every
datasource reference of every provisioned dashboard resolves, and titles do not collide.

The club-style dashboards (tests/stack/club/) reference their datasource as the club's files do:
the main one by the uid the club's own provisioning set, an older one by the name "Prometheus".
test_stack_e2e.py runs their queries against the real Prometheus of the stack.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from stack_support import PROVISIONING_DIR

CLUB_DIR = Path(__file__).parent / "club"
CLUB_DASHBOARD = CLUB_DIR / "fastapi-dashboard.json"
CLUB_DATASOURCE_UID = "P1809F7CD0C75ACF3"
CONTAINER_ROOT = Path("/etc/grafana/provisioning")  # where compose mounts grafana/provisioning
# Grafana's own pseudo-datasources, valid in any dashboard.
BUILTIN_DATASOURCES = {"grafana", "-- Grafana --", "-- Mixed --", "-- Dashboard --"}


@pytest.fixture
def provisioning(tmp_path: Path) -> Path:
    """A copy of grafana/provisioning with the club's dashboard dropped in unchanged."""
    root = tmp_path / "provisioning"
    shutil.copytree(PROVISIONING_DIR, root)
    for dashboard in CLUB_DIR.glob("*.json"):
        shutil.copy(dashboard, root / "club-dashboards")
    return root


def providers(root: Path) -> list[dict[str, Any]]:
    return [
        provider
        for path in sorted((root / "dashboards").glob("*.y*ml"))
        for provider in yaml.safe_load(path.read_text())["providers"]
    ]


def provider_dashboards(root: Path, provider: dict[str, Any]) -> dict[Path, dict[str, Any]]:
    """What Grafana's file provider loads: every JSON file under its path, recursively."""
    folder = root / Path(provider["options"]["path"]).relative_to(CONTAINER_ROOT)
    return {path: json.loads(path.read_text()) for path in sorted(folder.rglob("*.json"))}


def datasources(root: Path) -> list[dict[str, Any]]:
    return [
        datasource
        for path in sorted((root / "datasources").glob("*.y*ml"))
        for datasource in yaml.safe_load(path.read_text())["datasources"]
    ]


def references(node: Any) -> Iterator[Any]:
    """Every `datasource` value anywhere in a dashboard: panels, targets, variables, annotations."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def unresolved(root: Path) -> list[tuple[str, Any]]:
    """(dashboard file, reference) for every reference no provisioned datasource answers."""
    known = datasources(root)
    uids = {d["uid"] for d in known} | BUILTIN_DATASOURCES
    names = {d["name"] for d in known} | BUILTIN_DATASOURCES
    missing = []
    for provider in providers(root):
        for path, dashboard in provider_dashboards(root, provider).items():
            for reference in references(dashboard):
                if reference is None:  # the default datasource
                    continue
                if isinstance(reference, dict):
                    ok = reference.get("uid") in uids
                else:  # older dashboards: the datasource's name (or uid) as a string
                    ok = reference in names or reference in uids
                if not ok:
                    missing.append((path.name, reference))
    return missing


def test_every_datasource_reference_resolves(provisioning: Path) -> None:
    loaded = [
        dashboard
        for provider in providers(provisioning)
        for dashboard in provider_dashboards(provisioning, provider).values()
    ]
    assert len(loaded) >= 7  # ours (the app, PostgreSQL, Redis, Nginx, Node) and the club's two
    assert {"fdq6z8l9c2w3sd", "club-redis"} <= {d["uid"] for d in loaded}
    assert "Prometheus" in list(references(loaded))  # the older style, by name
    assert unresolved(provisioning) == []


def test_the_club_dashboard_needs_its_datasource_uid(provisioning: Path) -> None:
    path = provisioning / "datasources" / "prometheus.yml"
    config = yaml.safe_load(path.read_text())
    config["datasources"] = [d for d in config["datasources"] if d["uid"] != CLUB_DATASOURCE_UID]
    path.write_text(yaml.safe_dump(config))
    missing = unresolved(provisioning)
    assert {name for name, _ in missing} == {"fastapi-dashboard.json"}
    assert all(ref["uid"] == CLUB_DATASOURCE_UID for _, ref in missing)


def test_the_club_datasource_is_the_same_prometheus(provisioning: Path) -> None:
    by_uid = {d["uid"]: d for d in datasources(provisioning)}
    club, ours = by_uid[CLUB_DATASOURCE_UID], by_uid["prometheus"]
    assert club["type"] == ours["type"] == "prometheus"
    assert club["url"] == ours["url"]
    assert club["jsonData"] == ours["jsonData"]
    assert not club.get("isDefault")


def test_imported_dashboards_have_their_own_folder(provisioning: Path) -> None:
    loaded_by: dict[Path, list[str]] = {}
    folders: dict[str, list[dict[str, Any]]] = {}
    for provider in providers(provisioning):
        for path, dashboard in provider_dashboards(provisioning, provider).items():
            loaded_by.setdefault(path, []).append(provider["name"])
            folders.setdefault(provider.get("folder", ""), []).append(dashboard)
    # Each file is loaded by one provider only (a folder inside another would load it twice).
    assert all(len(names) == 1 for names in loaded_by.values()), loaded_by
    assert loaded_by[provisioning / "club-dashboards" / CLUB_DASHBOARD.name] == ["club"]
    # Titles are unique within a folder, uids across all of Grafana.
    for folder, dashboards in folders.items():
        titles = [d["title"] for d in dashboards]
        assert len(set(titles)) == len(titles), folder
    uids = [d["uid"] for dashboards in folders.values() for d in dashboards]
    assert len(set(uids)) == len(uids)
    titles = {folder: {d["title"] for d in ds} for folder, ds in folders.items()}
    assert "FastAPI Application Metrics" in titles["Club"] & titles[""]
