"""The public surface is deliberate: pin it."""

import operators
import streamcore


def test_streamcore_exports() -> None:
    assert sorted(streamcore.__all__) == sorted(n for n in dir(streamcore) if n in streamcore.__all__)
    for name in ("App", "EventTime", "Runner", "RunSettings", "ManualClock", "ConfigError", "LATE", "Operator"):
        assert name in streamcore.__all__


def test_operators_exports() -> None:
    assert set(operators.__all__) == {
        "Aggregate",
        "Aggregation",
        "Count",
        "CountDistinct",
        "FeatureView",
        "Latest",
        "Max",
        "Mean",
        "Min",
        "Rolling",
        "Session",
        "Sliding",
        "Sum",
        "Tumbling",
        "window_from_dict",
    }


def test_runtime_never_imports_operators() -> None:
    import ast
    from pathlib import Path

    offenders = []
    for path in Path(streamcore.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("operators", "apps")]
    assert offenders == []
