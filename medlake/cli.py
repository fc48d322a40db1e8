"""The ``medlake`` command line. Each capability keeps its own commands; this module only registers them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from medlake.config import Settings
    from medlake.pipeline import RunOutcome

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help="medlake — medical lakehouse on Delta Lake")


@app.command("run")
def run_command(
    select: str = typer.Option("*", "--select", help="Dagster asset selection, e.g. 'group:dwd' or 'key:metric/*'"),
) -> None:
    """Materialize assets in-process (recorded in $MEDLAKE_HOME/dagster, so `make dev` shows the runs)."""
    outcome = _run_with_progress(select)
    for step in outcome.failed_steps:
        typer.echo(f"  failed step: {step}")
    if not outcome.success:
        raise typer.Exit(1)


def _run_with_progress(select: str, current: Settings | None = None) -> RunOutcome:
    """Materialize ``select`` behind a progress bar; one closing line with the outcome, warnings and checks."""
    from medlake.pipeline import materialize
    from medlake.progress import run_progress

    started = time.perf_counter()
    with run_progress() as view:
        outcome = materialize(select, current, on_start=view.start, on_event=view)
    verdict = "succeeded" if outcome.success else "FAILED"
    typer.echo(f"run {outcome.run_id} {verdict} in {time.perf_counter() - started:.0f} s")
    if view.warnings:
        typer.echo(f"  {view.warnings} warnings in the run's log (`make dev` → Runs)")
    if outcome.checks_failed:
        typer.echo(f"  {len(outcome.checks_failed)} asset checks did not pass (see `medlake status`)")
    return outcome


@app.command("status")
def status_command(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables")) -> None:
    """Per-layer tables with row counts, quarantine, reconciliation and check outcomes."""
    from medlake.status import lake_status, print_status

    if as_json:
        from medlake.listing import print_json

        print_json(lake_status().to_dict())
        return
    print_status()


@app.command("demo")
def demo_command(
    patients: int = typer.Option(3000, "--patients"),
    days: int = typer.Option(5, "--days"),
    institutions: int = typer.Option(4, "--institutions"),
    seed: int = typer.Option(7, "--seed"),
) -> None:
    """Generate demo deliveries, materialize every asset, and print the summary."""
    from medlake.config import settings
    from medlake.status import print_status
    from medlake.synth import SynthConfig, generate

    current = settings()
    typer.secho("1/3 generating synthetic deliveries", bold=True)
    report = generate(SynthConfig(patients=patients, days=days, institutions=institutions, seed=seed), current)
    typer.echo(f"  {report.batches} batches, {report.files} files in {current.landing} ({report.seconds:.1f} s)")
    typer.secho("2/3 materializing every asset: ODS → DWD + checks → themes → metrics, and the workflows", bold=True)
    outcome = _run_with_progress("*", current)
    typer.secho("3/3 summary", bold=True)
    print_status(current)
    typer.echo("Open the Dagster UI with `make dev` (http://127.0.0.1:3000) to browse the graph and this run.")
    if not outcome.success:
        raise typer.Exit(1)


def _register() -> None:
    """Sub-commands owned by each capability's own module."""
    from medlake.empi.cli import empi_app
    from medlake.lake.maintenance_cli import maintain_command
    from medlake.lineage.cli import catalog_command, impact_command, lineage_app
    from medlake.security.cli import access_app, classification_app, classify_command
    from medlake.services.cli import audit_command, serve_command, users_app
    from medlake.standards.cli import standards_app
    from medlake.synth.cli import synth_command
    from medlake.workflows.cli import init_command

    app.command("synth")(synth_command)
    app.command("init")(init_command)
    app.command("impact")(impact_command)
    app.command("catalog")(catalog_command)
    app.command("maintain")(maintain_command)
    app.command("classify")(classify_command)
    app.add_typer(standards_app, name="standards")
    app.add_typer(empi_app, name="empi")
    app.add_typer(lineage_app, name="lineage")
    app.command("serve")(serve_command)
    app.command("audit")(audit_command)
    app.add_typer(users_app, name="users")
    app.add_typer(classification_app, name="classification")
    app.add_typer(access_app, name="access")


def main() -> None:
    _register()
    app()
