"""The import graph holds the architecture (docs/architecture.md): layers that only import
downwards, no cycles, and one composition root that reads settings and builds AWS clients."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "concierge": REPO_ROOT / "layers" / "concierge" / "concierge",
    "concierge_cli": REPO_ROOT / "cli" / "concierge_cli",
}

# Lowest first. A module may import its own layer and the layers below it, never above.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "concierge.errors",
            "concierge.text",
            "concierge.deadline",
            "concierge.models",
            "concierge.knowledge",
            "concierge.cache_keys",
            "concierge.pricing",
            "concierge.prompt_library",
            "concierge.safety",
            "concierge.experiments",
        ),
    ),
    ("settings and telemetry", ("concierge.config", "concierge.observability")),
    ("adapters", ("concierge.adapters",)),
    ("steps", ("concierge.steps",)),
    ("HTTP edge", ("concierge.api",)),
    ("composition root", ("concierge.wiring",)),
    ("outside the Lambda layer", ("concierge_cli",)),
)
COMPOSITION_ROOT = "concierge.wiring"
CLIENT_FACTORY = "concierge.adapters.aws"


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int


def _module_name(path: Path, package: str, root: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path, package, root): path
        for package, root in PACKAGES.items()
        for path in sorted(root.rglob("*.py"))
    }


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module `name` is, or lives in (None for third-party modules)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> Iterator[Import]:
    """Every project import of a module, at any depth (lazy imports in functions included)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a.b import c` imports module a.b.c when there is one, else names of a.b.
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if (target := _resolve(name)) is not None and target != module:
                yield Import(module, target, node.lineno)


GRAPH = {module: list(_imports(module)) for module in MODULES}


def _layer(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return rank
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS (and to the docs)")


def _where(edge: Import) -> str:
    return f"{MODULES[edge.importer].relative_to(REPO_ROOT)}:{edge.line}"


def test_every_module_belongs_to_a_layer() -> None:
    # Given every module of both packages (but the packages' own __init__)
    modules = [m for m in MODULES if m not in PACKAGES]

    # When each is placed
    layers = {module: LAYERS[_layer(module)][0] for module in modules}

    # Then each has a layer (an unplaced one fails inside _layer, naming itself)
    assert len(layers) == len(modules) > 0


def test_imports_only_go_down_the_layers() -> None:
    # Given every import between project modules
    edges = [edge for imports in GRAPH.values() for edge in imports]

    # When each importer's layer is compared with the imported module's
    upward = [
        f"{_where(edge)}: {edge.importer} ({LAYERS[_layer(edge.importer)][0]}) imports "
        f"{edge.imported} ({LAYERS[_layer(edge.imported)][0]})"
        for edge in edges
        if edge.imported not in PACKAGES and _layer(edge.imported) > _layer(edge.importer)
    ]

    # Then none goes up: models, text and errors never know about steps, adapters, the edge
    assert upward == []


def test_steps_use_adapters_only_through_their_ports() -> None:
    # Given the imports of the steps
    edges = [
        edge
        for module, imports in GRAPH.items()
        if module.startswith("concierge.steps")
        for edge in imports
    ]

    # When they reach into the adapters
    into_adapters = [edge for edge in edges if edge.imported.startswith("concierge.adapters.")]

    # Then only ports are imported, never an implementation
    assert [
        f"{_where(edge)}: {edge.imported}"
        for edge in into_adapters
        if not edge.imported.endswith(".port")
    ] == []


def test_there_is_no_import_cycle() -> None:
    # Given the module graph, and what a depth-first search has seen of it
    state: dict[str, str] = {}
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for edge in GRAPH[module]:
            if state.get(edge.imported) == "open":
                cycles.append([*path[path.index(edge.imported) :], edge.imported])
            elif edge.imported not in state:
                visit(edge.imported)
        path.pop()
        state[module] = "done"

    # When it is searched depth first from every module
    for module in sorted(GRAPH):
        if module not in state:
            visit(module)

    # Then no path comes back to a module it started from
    assert cycles == []


def _reads_environment(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"))
        or (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(alias.name in ("environ", "getenv") for alias in node.names)
        )
    ]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("concierge.")))
def test_only_the_composition_root_reads_the_environment(module: str) -> None:
    # Given a module of the Lambda layer
    path = MODULES[module]

    # When the places where it reads the environment are found
    reads = _reads_environment(path)

    # Then the composition root does, and no other module reads a variable itself
    if module == COMPOSITION_ROOT:
        assert reads != [], f"{module} should read the settings from the environment"
    else:
        assert reads == [], (
            f"{module} reads the environment: take the setting as an argument from "
            f"{COMPOSITION_ROOT}"
        )


def test_only_the_composition_root_builds_aws_clients() -> None:
    # Given the modules of the Lambda layer and the imports between them
    # When the importers of the client factory and of boto3 are collected
    factory_users = sorted(
        edge.importer
        for imports in GRAPH.values()
        for edge in imports
        if edge.imported == CLIENT_FACTORY and edge.importer.startswith("concierge.")
    )
    boto3_users = sorted(
        module
        for module, path in MODULES.items()
        if module.startswith("concierge.")
        and any(
            isinstance(node, ast.Import | ast.ImportFrom)
            and any(
                (getattr(node, "module", None) or alias.name).split(".")[0] == "boto3"
                for alias in node.names
            )
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    )

    # Then the composition root is the factory's only user, and the factory boto3's
    assert factory_users == [COMPOSITION_ROOT]
    assert boto3_users == [CLIENT_FACTORY]
