"""``medlake empi``: link any patient file into master IDs, and record manual link/unlink decisions."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from medlake.empi.errors import EmpiError
from medlake.table_files import read_table_file

if TYPE_CHECKING:  # polars and the index (Splink, pypinyin) load when a command runs, not for `medlake --help`
    import polars as pl

__all__ = ["empi_app", "write_assignments"]

empi_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Master patient index (EMPI)")


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

    records = read_table_file(input)
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
    record_a: str = typer.Argument(..., help="a record id, or a CSV of decisions (record_a, record_b, decision, why)"),
    record_b: str | None = typer.Argument(None, help="the other record id (omitted with a CSV)"),
    decision: str | None = typer.Option(None, "--decision", help="link or unlink (for one pair)"),
    who: str | None = typer.Option(None, "--who", help="who decides (a CSV may carry a who column instead)"),
    why: str = typer.Option("", "--why"),
    store: Path = typer.Option(..., "--store", help="EMPI state folder"),
) -> None:
    """Record manual link/unlink decisions; they win over the model now and on every later run.

    One pair: `decide A B --decision link --who NAME --why TEXT`. In bulk: `decide FILE.csv --who NAME`, FILE with
    columns record_a, record_b, decision (link/unlink; empty rows are skipped), why and optionally who, such as the
    queue `medlake empi review` writes, filled in."""
    from medlake.empi.index import MasterPatientIndex

    mpi = MasterPatientIndex(store)
    if record_b is None:
        from medlake.empi.review import decide_from_file

        count, result = decide_from_file(mpi, Path(record_a), who)
        applied = f": {result.merges} merges, {result.splits} splits" if result is not None else ""
        typer.echo(f"{count} decisions from {record_a}{applied}")
        return
    if decision is None or who is None:
        raise EmpiError("decide A B: --decision and --who are required for one pair")
    result = mpi.record_manual_decision(record_a, record_b, decision, who, why)  # type: ignore[arg-type]
    if result is not None:
        typer.echo(f"{decision} {record_a} {record_b}: {result.merges} merges, {result.splits} splits")


@empi_app.command("review")
def review_command(
    store: Path = typer.Option(..., "--store", help="EMPI state folder"),
    out: Path = typer.Option(..., "--out", help="output .csv or .parquet: the open review queue"),
    evidence: bool = typer.Option(True, "--evidence/--no-evidence", help="re-score pairs for per-field evidence"),
) -> None:
    """Write the open review queue: both records side by side, the model's evidence, empty decision/why columns
    to fill in and pass to `medlake empi decide`."""
    from medlake.empi.index import MasterPatientIndex
    from medlake.empi.review import review_queue

    queue = review_queue(MasterPatientIndex(store), evidence=evidence)
    write_assignments(queue, out)
    typer.echo(f"{queue.height} open review pairs → {out}")


@empi_app.command("evaluate")
def evaluate_command(
    input: Path = typer.Argument(..., help="CSV or Parquet file of patient records with a truth column"),
    truth: str = typer.Option(..., "--truth", help="column holding the true person of each record"),
    map: str = typer.Option(..., "--map", help="field=column pairs, as for `medlake empi link`"),
    link_threshold: float = typer.Option(0.95, help="match probability at which records link"),
    review_threshold: float = typer.Option(0.5, help="match probability from which pairs go to review"),
    choose_threshold: bool = typer.Option(
        False, "--choose-threshold", help="also choose the link threshold on a validation half, score the other"
    ),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="also run plain Splink beside it"),
    as_json: bool = typer.Option(False, "--json", help="print the figures as JSON"),
) -> None:
    """Link INPUT as `medlake empi link` does and score it against the truth column."""
    import json

    from medlake.empi.evaluate import evaluate
    from medlake.empi.field_map import FieldMap

    report = evaluate(
        read_table_file(input), FieldMap.parse(map), truth, link_threshold=link_threshold,
        review_threshold=review_threshold, choose_threshold=choose_threshold, baseline=baseline,
    )
    if as_json:
        typer.echo(json.dumps(report, indent=1))
        return
    for line in _report_lines(report):
        typer.echo(line)


def _quality_line(label: str, figures: dict[str, float]) -> str:
    return (f"{label:<10} precision {figures['precision']:.4f}  recall {figures['recall']:.4f}  "
            f"F1 {figures['f1']:.4f}  clusters {figures['predicted_clusters']} (true {figures['true_clusters']})")


def _report_lines(report: dict) -> list[str]:
    medlake = report["medlake"]
    lines = [
        f"{report['records']} records, {medlake['true_pairs']} true pairs, link threshold {report['link_threshold']}",
        _quality_line("medlake", medlake) + f"  {medlake['seconds']} s, {medlake['review_pairs']} to review",
        f"{'':<10} blocking recall {report['blocking_recall']:.4f}",
    ]
    if "validation" in report:
        val = report["validation"]
        lines.append(_quality_line("test half", val["test"])
                     + f"  threshold {val['chosen_threshold']} chosen on {val['validation_records']} records")
    if "baseline" in report:
        lines.append(_quality_line("splink", report["baseline"]) + f"  {report['baseline']['seconds']} s")
        lines.append(f"{'':<10} F1 ratio medlake/splink {report['f1_ratio']}")
    return lines
