"""The import graph, read from the sources with `ast`: no cycles, `service -> otel` and never
back, and inside `otel` no part imports a part above it.

The parts of `otel`, lowest first (a module may import its own part, and any lower rank):

    0  otel.config, otel.logs                     settings, log lines
    1  otel.metrics.*                             what is measured and how it is named
    2  otel.export.*, otel.traces.*, otel.routes  how metrics and spans leave; route templates
    3  otel.middleware                            the request path, for metrics and spans
    4  otel.setup                                 builds everything for one app
    5  otel                                       the public API
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("service", "otel")
RANKS = {
    "otel.config": 0,
    "otel.logs": 0,
    "otel.metrics": 1,
    "otel.export": 2,
    "otel.traces": 2,
    "otel.routes": 2,
    "otel.middleware": 3,
    "otel.setup": 4,
    "otel": 5,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
}


def imported(name: str, path: Path) -> set[str]:
    """The project's modules that `name` imports, anywhere in its source (TYPE_CHECKING too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from package import module` is the module; `from module import name` is the module.
            targets = [f"{base}.{alias.name}" for alias in node.names]
            targets = [target if target in MODULES else base for target in targets]
        else:
            continue
        found |= {target for target in targets if target in MODULES}
    return found - {name}


GRAPH = {name: imported(name, path) for name, path in MODULES.items()}


def rank(module: str) -> tuple[str, int]:
    """The part `module` belongs to, and that part's rank (outside `otel`: above them all)."""
    parts = [part for part in RANKS if module == part or module.startswith(part + ".")]
    if not parts:
        return module, len(RANKS)
    part = max(parts, key=len)
    return part, RANKS[part]


def test_the_graph_was_read() -> None:
    assert "otel.metrics.aggregator" in GRAPH["otel.export.endpoint"]
    assert "otel" in GRAPH["service.app"] or "otel" in GRAPH["service.main"]
    assert sum(map(len, GRAPH.values())) > 40


def test_no_import_cycles() -> None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, " -> ".join([*visiting, module])
        visiting.append(module)
        for target in sorted(GRAPH[module]):
            visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(GRAPH):
        visit(module)


def test_otel_never_imports_the_service() -> None:
    for module, targets in GRAPH.items():
        if module.split(".")[0] == "otel":
            assert not [t for t in targets if t.split(".")[0] == "service"], module


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.split(".")[0] == "otel"))
def test_otel_parts_import_only_their_own_part_or_lower(module: str) -> None:
    part, level = rank(module)
    for target in GRAPH[module]:
        target_part, target_level = rank(target)
        assert target_part == part or target_level < level, f"{module} imports {target}"
