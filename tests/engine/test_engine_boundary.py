"""Engine-specific code lives only in ``medlake/engine/``: no other module branches on the engine's name, looks
anything up by it, or dispatches on a frame's narwhals implementation. Operators call the engine's capabilities."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from medlake.config import ENGINES

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("medlake", "assets", "checks", "sensors", "jobs")
ENGINE_PACKAGE = ROOT / "medlake" / "engine"
ENGINE_NAMES = frozenset(ENGINES) | {"pyspark", "duckdb"}
ENGINE_CLASSES = frozenset({"PolarsEngine", "SparkEngine"})
ENGINE_ONLY_IMPORTS = ("pyspark", "medlake.engine.spark_session", "soda_duckdb", "soda_sparkdf", "sqlglot")
SPLINK_DATABASE_APIS = frozenset({"DuckDBAPI", "SparkAPI"})


def _names(node: ast.AST) -> set[str]:
    """The engine names a constant, or a tuple/list/set of constants, spells."""
    items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    return {i.value for i in items if isinstance(i, ast.Constant) and i.value in ENGINE_NAMES}


def _last_name(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def engine_dispatch(source: str) -> Iterator[tuple[int, str]]:
    """(line, what) for each place ``source`` dispatches on the engine."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(_names(n) for n in (node.left, *node.comparators)):
            yield node.lineno, "compares with an engine name"
        elif isinstance(node, ast.Dict) and any(k is not None and _names(k) for k in node.keys):
            yield node.lineno, "dict keyed by engine name"
        elif isinstance(node, ast.Subscript) and _names(node.slice):
            yield node.lineno, "looks up by engine name"
        elif isinstance(node, ast.MatchValue) and _names(node.value):
            yield node.lineno, "matches an engine name"
        elif isinstance(node, ast.Attribute) and node.attr in ("implementation", "Implementation"):
            yield node.lineno, "dispatches on the narwhals implementation"
        elif isinstance(node, ast.Attribute) and node.attr == "name" and _last_name(node.value) == "engine":
            yield node.lineno, "reads the engine's name"
        elif isinstance(node, ast.Call) and _last_name(node.func) in ("get_spark", "isinstance") and (
            _last_name(node.func) == "get_spark" or any(_last_name(a) in ENGINE_CLASSES for a in node.args[1:])
        ):
            yield node.lineno, "reaches for an engine's session or class"
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(m == p or m.startswith(p + ".") for m in modules for p in ENGINE_ONLY_IMPORTS):
                yield node.lineno, f"imports engine-only {', '.join(modules)}"
            elif SPLINK_DATABASE_APIS & {a.name for a in node.names}:
                yield node.lineno, "imports a Splink database API (the engine's splink() gives it)"


# Allowed to name engines: the benchmarks that compare the two engines by name (Spark vs embedded), and config.py,
# which reads MEDLAKE_ENGINE and holds the Spark section of the settings.
EXEMPT = (ROOT / "medlake" / "bench" / "spark_merge.py", ROOT / "medlake" / "bench" / "spark_pipeline.py",
          ROOT / "medlake" / "config.py")


def _modules() -> Iterator[Path]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if ENGINE_PACKAGE not in path.parents and path not in EXEMPT:
                yield path


def test_no_engine_dispatch_outside_the_engine_package() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: {what}" for path in _modules()
             for line, what in engine_dispatch(path.read_text(encoding="utf-8"))]
    assert found == [], "engine-specific code outside medlake/engine/:\n" + "\n".join(found)


@pytest.mark.parametrize("snippet", [
    'if engine == "spark":\n    pass',
    'x = settings.engine in ("polars", "spark")',
    'BACKENDS = {"polars": 1, "spark": 2}',
    'backend = BACKENDS["spark"]',
    "hasher = HASHERS.get(frame.implementation)",
    "x = {nw.Implementation.POLARS: 1}",
    "run(engine=ctx.engine.name)",
    "session = get_spark(cfg)",
    "if isinstance(engine, SparkEngine):\n    pass",
    "from pyspark.sql import functions as F",
    "from splink import SparkAPI",
    "import sqlglot",
    'match engine:\n    case "spark":\n        pass',
])
def test_the_check_finds_each_form_of_dispatch(snippet: str) -> None:
    assert list(engine_dispatch(snippet)), snippet


def test_the_check_leaves_engine_neutral_code_alone() -> None:
    neutral = ("frame = ctx.engine.hash_columns(frame, columns, salt)\n"
               "if saved['sql_dialect'] != backend.dialect:\n    pass\n"
               "names = {'spark_merge': 1}\nengine = get_engine(settings.engine)\n"
               "from splink import Linker, block_on\n")
    assert list(engine_dispatch(neutral)) == []
