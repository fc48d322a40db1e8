"""The ``medlake`` command line. Each capability keeps its own commands; this module only registers them."""

from __future__ import annotations

import typer

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help="medlake — medical lakehouse on Delta Lake")


@app.command("run")
def run_command(
    select: str = typer.Option("*", "--select", help="Dagster asset selection, e.g. 'group:dwd' or 'key:metric/*'"),
) -> None:
    """Materialize assets in-process (recorded in $MEDLAKE_HOME/dagster, so `make dev` shows the runs)."""
    from medlake.pipeline import materialize

    outcome = materialize(select)
    typer.echo(f"run {outcome.run_id}: {'succeeded' if outcome.success else 'FAILED'}")
    for step in outcome.failed_steps:
        typer.echo(f"  failed step: {step}")
    if outcome.checks_failed:
        typer.echo(f"  {len(outcome.checks_failed)} asset checks did not pass (see `medlake status`)")
    if not outcome.success:
        raise typer.Exit(1)


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
    from medlake.pipeline import materialize
    from medlake.status import print_status
    from medlake.synth import SynthConfig, generate

    current = settings()
    report = generate(SynthConfig(patients=patients, days=days, institutions=institutions, seed=seed), current)
    typer.echo(f"synthetic deliveries written to {current.landing} ({report.seconds:.1f} s)")
    outcome = materialize("*", current)
    typer.echo(f"materialized every asset: {'succeeded' if outcome.success else 'FAILED'} (run {outcome.run_id})")
    print_status(current)
    typer.echo("Open the Dagster UI with `make dev` (http://127.0.0.1:3000) to browse the graph and this run.")
    if not outcome.success:
        raise typer.Exit(1)


def _register() -> None:
    """Sub-commands owned by each capability's own module."""
    from medlake.empi.cli import empi_app
    from medlake.lake.maintenance_cli import maintain_command
    from medlake.lineage.cli import catalog_command, impact_command, lineage_app
    from medlake.standards.cli import standards_app
    from medlake.synth.cli import synth_command
    from medlake.workflows.cli import init_command

    app.command("synth")(synth_command)
    app.command("init")(init_command)
    app.command("impact")(impact_command)
    app.command("catalog")(catalog_command)
    app.command("maintain")(maintain_command)
    app.add_typer(standards_app, name="standards")
    app.add_typer(empi_app, name="empi")
    app.add_typer(lineage_app, name="lineage")


def main() -> None:
    _register()
    app()
