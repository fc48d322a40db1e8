"""``medlake synth``: generate landing batches and truth under $MEDLAKE_HOME (registered by medlake/cli.py)."""

from __future__ import annotations

from datetime import datetime

import typer

__all__ = ["synth_command"]


def synth_command(
    patients: int = typer.Option(1000, "--patients", min=1, help="Distinct persons"),
    days: int = typer.Option(7, "--days", min=1, help="Business days (one batch per institution per day)"),
    institutions: int = typer.Option(3, "--institutions", min=1, help="Number of hospitals"),
    seed: int = typer.Option(42, "--seed", help="Random seed; the same seed gives byte-identical files"),
    start_date: datetime = typer.Option("2026-01-01", "--start-date", formats=["%Y-%m-%d"], help="First date"),
    encounters: int | None = typer.Option(None, "--encounters", min=0, help="Encounters in total (3 per patient)"),
    defect_rate: float = typer.Option(1.0, "--defect-rate", min=0.0, help="Scales every injected defect rate"),
    history_days: int = typer.Option(30, "--history-days", min=0, help="Days of settlements before the window"),
) -> None:
    """Generate synthetic hospital and insurance deliveries into the landing zone, plus truth files."""
    from rich.console import Console
    from rich.table import Table

    from medlake.config import settings
    from medlake.errors import MedlakeError
    from medlake.synth import SynthConfig, generate

    console = Console()
    try:
        config = SynthConfig(
            patients=patients,
            days=days,
            institutions=institutions,
            seed=seed,
            start_date=start_date.date(),
            encounters=encounters,
            defect_rate=defect_rate,
            history_days=history_days,
        )
        report = generate(config, settings())
    except MedlakeError as exc:
        console.print(f"[red]synth failed:[/red] {exc}")
        raise typer.Exit(code=1) from None
    table = Table(title=f"synth: {report.batches} batches, {report.files} files in {report.seconds:.1f}s")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in report.rows.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print("defects injected: " + ", ".join(f"{k}={v}" for k, v in report.defects.items()))
    console.print(f"landing: {report.landing}\ntruth:   {report.truth}")
