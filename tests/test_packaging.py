"""A fresh clone installs what the code imports: every third-party import is a declared dependency, and nothing the
project needs is tracked as a machine-local path."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = {"medlake", "assets", "checks", "jobs", "sensors", "tests"}


def _requirement_name(text: str) -> str:
    return re.split(r"[\s\[<>=!~;]", text.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> set[str]:
    """Distributions in the dependencies and the extras (the lock installs them all)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = [project["dependencies"], *project["optional-dependencies"].values()]
    return {_requirement_name(r) for group in groups for r in group}


def _imports(folder: str) -> dict[str, str]:
    """Top-level module imported → first file importing it, for absolute imports under ``folder``."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _undeclared(folders: tuple[str, ...], allowed: set[str]) -> list[str]:
    distributions = md.packages_distributions()
    missing = []
    for folder in folders:
        for module, where in _imports(folder).items():
            if module in FIRST_PARTY or module in sys.stdlib_module_names or module == "__future__":
                continue
            dists = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
            if not dists & allowed:
                missing.append(f"{module} (imported by {where}; installed by {sorted(dists) or 'nothing'})")
    return missing


def test_library_imports_are_declared_dependencies() -> None:
    assert _undeclared(("medlake", "assets", "checks", "jobs", "sensors"), _declared()) == []


def test_test_imports_are_declared_dependencies() -> None:
    assert _undeclared(("tests",), _declared()) == []


def test_nothing_tracked_points_outside_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    symlinks = [line.split("\t", 1)[1] for line in tracked.splitlines() if line.startswith("120000")]
    leaving = [s for s in symlinks if not (ROOT / s).resolve().is_relative_to(ROOT)]
    assert leaving == []
    for local in (".venv", ".medlake"):
        listed = subprocess.run(["git", "ls-files", "--", local], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout
        assert listed == "", f"{local} is machine-local and must not be tracked"
