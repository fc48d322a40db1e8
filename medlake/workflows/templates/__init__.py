"""Scenario templates shipped with medlake: ``<scenario>/*.yaml``, laid down by ``medlake init``."""

from __future__ import annotations

import shutil
from pathlib import Path

from medlake.workflows.errors import WorkflowError

__all__ = ["SCENARIOS", "TEMPLATES_DIR", "copy_templates", "template_files"]

SCENARIOS = ("hospital", "health_commission", "cdc", "insurance")  # one template folder each
TEMPLATES_DIR = Path(__file__).resolve().parent


def template_files(scenario: str) -> list[Path]:
    """The template files of one scenario, sorted."""
    folder = TEMPLATES_DIR / scenario
    scenarios = sorted(p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
    if scenario not in scenarios:
        raise WorkflowError(f"unknown scenario {scenario!r}; expected one of {', '.join(scenarios)}")
    return sorted(folder.glob("*.yaml"))


def copy_templates(scenario: str, destination: Path, *, overwrite: bool = False) -> list[Path]:
    """Copy a scenario's templates into ``destination``; existing files are kept unless ``overwrite``."""
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    for source in template_files(scenario):
        target = destination / source.name
        if target.exists() and not overwrite:
            continue
        shutil.copyfile(source, target)
        written.append(target)
    return written
