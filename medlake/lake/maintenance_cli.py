"""``medlake maintain``: OPTIMIZE, VACUUM and checkpoint the lake's Delta tables (registered by medlake/cli.py)."""

from __future__ import annotations

import json

import typer

__all__ = ["maintain_command"]


def _size(count: int | None) -> str:
    return "-" if count is None else f"{count / 1_048_576:,.1f} MB"


def maintain_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Change nothing; list the files VACUUM would delete"),
    tables: list[str] = typer.Option([], "--table", help="LAYER/NAME, e.g. dwd/settlement (repeatable; default all)"),
    as_json: bool = typer.Option(False, "--json", help="One JSON array of per-table reports"),
) -> None:
    """Compact (Z-order on lookup keys), vacuum outside the time-travel window (MEDLAKE_TIME_TRAVEL_DAYS) and
    checkpoint every Delta table of the lake, on the engine MEDLAKE_ENGINE names."""
    from medlake.config import settings
    from medlake.engine import get_engine
    from medlake.errors import MedlakeError
    from medlake.lake.maintenance import maintain_lake

    current = settings()
    try:
        reports = maintain_lake(get_engine(current.engine), current, tables=tables, dry_run=dry_run)
    except MedlakeError as exc:
        typer.secho(f"maintain failed: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in reports], ensure_ascii=False, indent=2))
        return
    verb = "would vacuum" if dry_run else "vacuumed"
    typer.echo(f"{'dry run: ' if dry_run else ''}{len(reports)} tables, retention "
               f"{current.time_travel_hours} h (MEDLAKE_TIME_TRAVEL_DAYS={current.time_travel_days:g})")
    for r in reports:
        after = "" if r.files_after is None else f" -> {r.files_after}"
        typer.echo(f"{r.table:<40} files {r.files_before}{after}  bytes {_size(r.bytes_before)}"
                   f"{'' if r.bytes_after is None else ' -> ' + _size(r.bytes_after)}  version {r.version_before}"
                   f"{'' if r.version_after is None else f' -> {r.version_after}'}  {verb} {r.files_vacuumed}"
                   f"{'' if not r.zorder else '  z-order ' + ','.join(r.zorder)}"
                   f"{'' if r.optimize else '  (no OPTIMIZE: load order kept)'}")
