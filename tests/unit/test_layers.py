"""The package's layers are its folders, and imports flow one way (../shared/STYLE.md, docs/architecture.md):

    base (errors, settings, clock, ids, wire, cancellation) <- domain <- stream <- storage <- service <- web
    <- server <- entry points (the package itself, cli, asgi, __main__)

`client/` stands aside and imports only `errors` and `wire`; `notebook/` may use the service and the client;
`dashboard/` holds the browser's files and imports nothing. Every import of the package is read with `ast`,
those under `if TYPE_CHECKING:` and inside functions too: a lazy import is still an arrow."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "metricstream"

BASE = {"errors", "settings", "clock", "ids", "wire", "cancellation"}
ENTRY = {"", "__main__", "cli", "asgi"}
LAYERS = [
    "base",
    "domain",
    "stream",
    "storage",
    "service",
    "dashboard",
    "web",
    "client",
    "notebook",
    "server",
]
MAY_IMPORT: dict[str, set[str]] = {
    "base": {"base"},
    "domain": {"base", "domain"},
    "stream": {"base", "stream"},  # the fan-out knows nothing of metrics
    "storage": {"base", "domain", "stream", "storage"},
    "service": {"base", "domain", "stream", "storage", "service"},
    "dashboard": {"dashboard"},
    "web": {"base", "domain", "stream", "storage", "service", "dashboard", "web"},
    "client": {"client"},  # and errors and wire alone of the base: CLIENT_BASE
    "notebook": {"base", "domain", "service", "client", "dashboard", "notebook"},
    "server": {"base", "domain", "stream", "storage", "service", "web", "client", "notebook", "server"},
}
CLIENT_BASE = {"metricstream.errors", "metricstream.wire"}
FRAMEWORKS = {"quart": "web", "quart_schema": "web", "hypercorn": "server"}  # the only layer importing it


def module_of(path: Path) -> str:
    parts = ["metricstream", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts or parts[0] in ENTRY:
        return "entry"
    return "base" if parts[0] in BASE else parts[0]


MODULES = {module_of(path): path for path in PACKAGE.rglob("*.py")}


def imports(module: str) -> tuple[set[str], set[str]]:
    """(modules of the package, top-level outside packages) that `module` imports, wherever in it."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    ours: set[str] = set()
    theirs: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (ours if alias.name.startswith("metricstream") else theirs).add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not target.startswith("metricstream"):
                theirs.add(target.split(".")[0])
                continue
            for alias in node.names:  # `from . import sse` imports a module
                ours.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target)
    return ours, theirs


GRAPH = {module: imports(module)[0] - {module} for module in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_flow_one_way(module: str) -> None:
    layer = layer_of(module)
    if layer == "entry":
        return
    for target in sorted(GRAPH[module]):
        if layer == "client" and layer_of(target) == "base":
            assert target in CLIENT_BASE, (
                f"{module} imports {target}: the client imports only errors and wire"
            )
            continue
        assert layer_of(target) in MAY_IMPORT[layer], (
            f"{module} ({layer}) imports {target} ({layer_of(target)})"
        )


@pytest.mark.parametrize(("framework", "home"), sorted(FRAMEWORKS.items()))
def test_a_framework_is_imported_by_its_layer_alone(framework: str, home: str) -> None:
    importers = {module for module in MODULES if framework in imports(module)[1]}
    assert importers, f"nothing imports {framework}"
    assert {layer_of(module) for module in importers} == {home}, sorted(importers)


def test_there_is_no_import_cycle() -> None:
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH[module]):
            if target not in GRAPH:
                continue
            if state[target] == 1:
                cycle = [*path[path.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if state[target] == 0:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if state[module] == 0:
            visit(module)


def test_every_module_is_in_a_layer() -> None:
    assert {layer_of(module) for module in MODULES} <= {*LAYERS, "entry"}
