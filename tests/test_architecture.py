"""The tree is the architecture: layers import downward only, no module imports in a cycle,
no module is a god module, and the public surface is deliberate.

The import graph is read from the source with `ast`: every import counts, also those
under ``if TYPE_CHECKING:`` and inside functions, because each is a dependency a reader
has to follow.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS = [
    "streamcore.base",
    "streamcore.eventtime",
    "streamcore.state",
    "streamcore.io",
    "streamcore.online",
    "streamcore.dataflow",
    "streamcore.serving",
    "streamcore.runtime",
    "streamcore.operators",
    "streamcore.cli streamcore.testing",
    "streamcore",
    "streamcore.apps",
]
"""Bottom up; a module may import its own layer and the ones below. Names on one line share a layer."""

MAX_LINES = 400


def _source_modules() -> dict[str, Path]:
    """Module name -> file, for streamcore/, operators/ (streamcore.operators) and apps/ (streamcore.apps).

    Cython kernels (``.pyx``) and the parts they include (``.pxi``) are modules too; they
    import nothing of the tree.
    """
    modules = {}
    for folder, package in (
        ("streamcore", "streamcore"),
        ("operators", "streamcore.operators"),
        ("apps", "streamcore.apps"),
    ):
        for path in [*(ROOT / folder).rglob("*.py"), *(ROOT / folder).rglob("*.pyx"), *(ROOT / folder).rglob("*.pxi")]:
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *parts))
            modules[name.removesuffix(".__init__")] = path
    return modules


MODULES = _source_modules()


def _imports(name: str, path: Path) -> set[str]:
    """The modules of this tree that `name` imports."""
    if path.suffix in (".pyx", ".pxi"):
        return set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    best, rank = -1, -1
    for i, line in enumerate(LAYERS):
        for prefix in line.split():
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank >= 0, f"{module} is in no layer: add it to LAYERS"
    return rank


def test_every_import_goes_down_a_layer_or_stays_in_its_own() -> None:
    upward = [
        f"{module} ({LAYERS[_layer(module)]}) imports {target} ({LAYERS[_layer(target)]})"
        for module, targets in sorted(GRAPH.items())
        for target in sorted(targets)
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_no_module_imports_in_a_cycle() -> None:
    """Tarjan's strongly connected components: any component of more than one module is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in GRAPH[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert cycles == []


def test_the_runtime_never_imports_operators_or_apps() -> None:
    below = [m for m in GRAPH if _layer(m) < _layer("streamcore.operators")]
    offenders = [
        f"{m} imports {t}" for m in below for t in GRAPH[m] if t.startswith(("streamcore.operators", "streamcore.apps"))
    ]
    assert offenders == []


def test_no_module_is_over_400_lines() -> None:
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("package", [line.split()[0] for line in LAYERS if line.split()[0] != "streamcore"])
def test_each_layer_says_what_it_owns_and_may_import(package: str) -> None:
    doc = ast.get_docstring(ast.parse(MODULES[package].read_text())) or ""
    assert len(doc) > 80, f"{package}/__init__.py needs a docstring: what the layer owns, what it may import"


PUBLIC = {
    "streamcore": [
        "FILTERED", "LATE", "Aggregate", "App", "Broker", "Clock", "ConfigError", "Control", "Count",
        "CountDistinct", "EventTime", "FeatureView", "IncompatibleState", "Latest", "LogCorruption", "LogError",
        "ManualClock", "Max", "Mean", "Min", "Operator", "OperatorContext", "OperatorSpec", "Pipeline", "Record",
        "RecordBatch", "RecordError", "Rolling", "RunSettings", "RunStatus", "Runner", "SchemaError", "Session",
        "SimulatedCrash", "Sink", "Sliding", "Source", "StateError", "StateWriter", "Stream", "StreamcoreError",
        "Sum", "SystemClock", "TopicNotFound", "TopicSpec", "Tumbling", "WindowSpec", "WindowedStream", "run",
    ],
    "streamcore.operators": [
        "Aggregate", "Aggregation", "Count", "CountDistinct", "FeatureView", "Latest", "Max", "Mean", "Min",
        "Rolling", "Session", "Sliding", "Sum", "Tumbling", "window_from_dict",
    ],
    "streamcore.io.log": ["EmbeddedLog", "PartitionReader", "PartitionWriter", "TopicConfig"],
}  # fmt: skip
"""The public names of each package that has any; an accidental export or removal fails here."""


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_the_public_names_of_each_package_are_deliberate(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(PUBLIC[package])
    assert all(hasattr(module, name) for name in module.__all__)


@pytest.mark.parametrize("package", [line.split()[0] for line in LAYERS[:8]])
def test_layer_packages_export_nothing_themselves(package: str) -> None:
    """Layers are imported by module (`streamcore.state.store`), so their packages stay empty."""
    if package in PUBLIC:
        return
    module = importlib.import_module(package)
    names = [n for n in vars(module) if not n.startswith("_") and not isinstance(getattr(module, n), type(ast))]
    assert names == []


def test_no_generic_top_level_packages_are_installed() -> None:
    """operators/ and apps/ install as streamcore.operators and streamcore.apps."""
    text = (ROOT / "pyproject.toml").read_text()
    assert '"streamcore.operators" = "operators"' in text and '"streamcore.apps" = "apps"' in text
    assert importlib.import_module("streamcore.operators").__file__ == str(ROOT / "operators" / "__init__.py")
