"""The environment is read (and written) in one module only, medlake/config.py: every other module of the product
receives Settings, and secrets reach it through Dagster resources."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("medlake", "assets", "checks", "sensors", "jobs")
CONFIG = ROOT / "medlake" / "config.py"
_ENV_NAMES = {"environ", "getenv", "putenv", "unsetenv", "environb", "getenvb"}


def _environment_uses(path: Path, root: Path = ROOT) -> list[str]:
    """``os.environ``, ``os.getenv``... as attributes or imported names, as ``file:line: use`` in line order."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in _ENV_NAMES:
            found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [(node.lineno, f"from os import {a.name}") for a in node.names if a.name in _ENV_NAMES]
    return [f"{path.relative_to(root)}:{line}: {use}" for line, use in sorted(found)]


def test_the_scanner_finds_every_spelling(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom os import getenv\na = os.environ.get('X')\nb = os.getenv('Y')\n"
                      "os.environ.setdefault('Z', '1')\nc = os.path.join('a', 'b')\n", encoding="utf-8")
    assert _environment_uses(sample, tmp_path) == [
        "sample.py:2: from os import getenv", "sample.py:3: .environ", "sample.py:4: .getenv", "sample.py:5: .environ"]


def test_only_config_reads_the_environment() -> None:
    uses = [use for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py")) if path != CONFIG
            for use in _environment_uses(path)]
    assert uses == []
    assert _environment_uses(CONFIG)  # and config.py does read it
