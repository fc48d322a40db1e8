"""``medlake empi``: link any patient file into master IDs, and record manual link/unlink decisions."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from medlake.empi.errors import EmpiError

if TYPE_CHECKING:  # polars and the index (Splink, pypinyin) load when a command runs, not for `medlake --help`
    import polars as pl

__all__ = ["empi_app", "read_patient_file", "write_assignments"]

empi_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Master patient index (EMPI)")


def read_patient_file(path: Path) -> pl.DataFrame:
    """A CSV (UTF-8 or GBK, header row; every column read as text) or Parquet file."""
    import polars as pl

    if not path.exists():
        raise EmpiError(f"{path}: no such file")
    if path.suffix.lower() in {".parquet", ".pq"}:
        return pl.read_parquet(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise EmpiError(f"{path}: byte {exc.start} is neither UTF-8 nor GBK") from None
    return pl.read_csv(text.encode(), infer_schema=False)


def write_assignments(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in {".parquet", ".pq"}:
        frame.write_parquet(path)
    else:
        frame.write_csv(path)


@empi_app.command("link")
def link_command(
    input: Path = typer.Argument(..., help="CSV or Parquet file of patient records"),
    map: str = typer.Option(..., "--map", help="field=column pairs, e.g. name=xm,id_number=sfzh,birth_date=csrq"),
    out: Path = typer.Option(..., "--out", help="output .csv or .parquet: record_id, master_id, score"),
    store: Path | None = typer.Option(None, "--store", help="EMPI state folder (kept: later runs are incremental)"),
    link_threshold: float = typer.Option(0.95, help="match probability at which records link"),
    review_threshold: float = typer.Option(0.5, help="match probability from which pairs go to review"),
) -> None:
    """Link INPUT into master IDs; without --store the state is thrown away afterwards."""
    from medlake.empi.field_map import FieldMap
    from medlake.empi.index import MasterPatientIndex

    records = read_patient_file(input)
    field_map = FieldMap.parse(map)
    with tempfile.TemporaryDirectory(prefix="medlake-empi-") as scratch:
        mpi = MasterPatientIndex(
            store or Path(scratch), link_threshold=link_threshold, review_threshold=review_threshold
        )
        result = mpi.link(records, field_map)
        write_assignments(result.assignments, out)
    typer.echo(
        f"{result.records_in} records → {result.masters} masters ({result.new_masters} new, {result.merges} merges, "
        f"{result.review_pairs} pairs to review) in {result.seconds:.1f} s; wrote {out}"
    )


@empi_app.command("decide")
def decide_command(
    record_a: str = typer.Argument(...),
    record_b: str = typer.Argument(...),
    decision: str = typer.Option(..., "--decision", help="link or unlink"),
    who: str = typer.Option(..., "--who"),
    why: str = typer.Option("", "--why"),
    store: Path = typer.Option(..., "--store", help="EMPI state folder"),
) -> None:
    """Record a manual link/unlink; it wins over the model now and on every later run."""
    from medlake.empi.index import MasterPatientIndex

    result = MasterPatientIndex(store).record_manual_decision(record_a, record_b, decision, who, why)  # type: ignore[arg-type]
    if result is not None:
        typer.echo(f"{decision} {record_a} {record_b}: {result.merges} merges, {result.splits} splits")
