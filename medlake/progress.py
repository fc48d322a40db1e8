"""A short progress view of an in-process run, driven by the run's Dagster events as the instance stores them."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

__all__ = ["RunProgress", "run_progress", "step_label"]

_DONE = {"STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"}


def step_label(step_key: str) -> str:
    """``dwd__patient`` → ``dwd · patient``; a check step ``quality_patient`` → ``checks · patient``; other
    multi-asset steps (``theme_assets``) by name."""
    if "__" in step_key:
        layer, _, name = step_key.partition("__")
        return f"{layer} · {name.replace('__', '/')}"
    if step_key.startswith("quality_"):
        return f"checks · {step_key.removeprefix('quality_')}"
    return step_key.replace("_assets", "")


@dataclass
class RunProgress:
    """Steps done of the total and the step now running, on one rich progress bar; counts the warnings logged."""

    progress: Progress
    task: TaskID = field(init=False)
    warnings: int = 0
    failed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.task = self.progress.add_task("loading the asset graph", total=None)

    def start(self, steps: int) -> None:
        self.progress.update(self.task, description="starting the run", total=steps)

    def __call__(self, entry: Any) -> None:
        if not entry.is_dagster_event:
            self.warnings += int(entry.level >= logging.WARNING)
            return
        kind, step = entry.dagster_event.event_type_value, entry.step_key or ""
        if kind == "STEP_START":
            self.progress.update(self.task, description=f"running {step_label(step)}")
        elif kind in _DONE:
            self.progress.advance(self.task)
            if kind == "STEP_FAILURE":
                self.failed.append(step)

    def finish(self) -> None:
        self.progress.update(self.task, description="run finished")


@contextmanager
def _stdout_to_devnull() -> Iterator[TextIO]:
    """File descriptor 1 goes to /dev/null while the run runs: dbt's event lines, which Dagster re-emits on stdout,
    stay in the run's captured compute logs (the UI shows them). Yields a stream on the real stdout for the view."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        with os.fdopen(os.dup(saved), "w", encoding="utf-8") as terminal:
            yield terminal
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@contextmanager
def run_progress() -> Iterator[RunProgress]:
    """A live bar for one run: pass the view as ``materialize(on_start=view.start, on_event=view)``. Errors logged
    on stderr print above the bar."""
    columns = (TextColumn("[bold]{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
               TimeElapsedColumn())
    with _stdout_to_devnull() as terminal, Progress(*columns, console=Console(file=terminal),
                                                    redirect_stdout=False) as progress:
        view = RunProgress(progress)
        try:
            yield view
        finally:
            view.finish()
