"""``medlake init --scenario <name> [--dir workflows/]``: lay down a scenario's workflow templates."""

from __future__ import annotations

from pathlib import Path

import typer

from medlake.workflows.errors import WorkflowError
from medlake.workflows.templates import SCENARIOS

__all__ = ["init_command"]


def init_command(
    scenario: str = typer.Option(..., "--scenario", help=f"one of {', '.join(SCENARIOS)}"),
    directory: Path = typer.Option(Path("workflows"), "--dir", help="where the workflow files go"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace files that already exist"),
) -> None:
    """Copy the workflow templates of a scenario (hospital, health_commission, cdc, insurance) into a folder."""
    from medlake.workflows.spec import load_workflows
    from medlake.workflows.templates import copy_templates

    try:
        written = copy_templates(scenario, directory, overwrite=overwrite)
        specs = load_workflows(directory, check_operators=False)
    except WorkflowError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"{len(specs)} workflow(s) in {directory}: {', '.join(s.name for s in specs)}")
    typer.echo(f"the pipeline runs them with MEDLAKE_WORKFLOWS={directory}")
