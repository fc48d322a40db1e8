"""``medlake impact``, ``medlake catalog`` and ``medlake lineage …`` (graph queries). The lead registers them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from medlake.lineage.errors import LineageError

__all__ = ["DEFAULT_CHECKS_DIR", "catalog_command", "impact_command", "lineage_app", "load_registry"]

DEFAULT_CHECKS_DIR = Path("checks/generated")
lineage_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Query the lineage graph")


def load_registry(version: str | None = None) -> Any:
    """The standards registry (newest release, or ``version`` for a preview)."""
    from medlake.standards import Registry, StandardNotFoundError

    try:
        return Registry.load(version)
    except StandardNotFoundError as exc:
        raise LineageError(str(exc)) from None


def _graph(version: str | None, checks_dir: Path) -> Any:
    from medlake.lineage.inventory import build_graph

    return build_graph(registry=load_registry(version), checks_dir=checks_dir)


def _fail(exc: Exception) -> None:
    typer.secho(str(exc), fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def impact_command(
    element: list[str] = typer.Option([], "--element", "-e", help="Data element id, e.g. DE02.01.040.00"),
    domain: list[str] = typer.Option([], "--domain", "-d", help="Value domain id, e.g. 'GB/T 2261.1'"),
    mapping: list[str] = typer.Option([], "--mapping", "-m", help="Mapping table: institution/category"),
    diff: str | None = typer.Option(None, "--diff", help="Two standards versions, OLD..NEW"),
    preview: str | None = typer.Option(None, "--preview", help="Compute against this not-yet-active release"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text"),
    checks_dir: Path = typer.Option(DEFAULT_CHECKS_DIR, "--checks-dir", help="Generated check files"),
) -> None:
    """List every column, table, dbt model, check and metric a standard change affects."""
    from medlake.lineage.impact import StandardChange, changes_from_diff, impact

    try:
        changes = [StandardChange("data_element", e) for e in element]
        changes += [StandardChange("value_domain", d) for d in domain]
        changes += [StandardChange("mapping_table", m) for m in mapping]
        version = preview
        if diff:
            old, sep, new = diff.partition("..")
            if not sep or not old or not new:
                raise LineageError(f"--diff {diff!r}: expected OLD..NEW")
            from medlake import standards

            changes += changes_from_diff(standards.diff(old, new))
            version = version or new
        if not changes:
            raise LineageError("name a change: --element, --domain, --mapping or --diff OLD..NEW")
        report = impact(changes, _graph(version, checks_dir), preview=version is not None)
    except (LineageError, ImportError) as exc:
        _fail(exc)
        return
    typer.echo(report.to_json() if as_json else report.to_text())


def catalog_command(
    query: str | None = typer.Argument(None, help="Search text: a table name or a column name"),
    layer: str | None = typer.Option(None, "--layer", help="ods, dwd, theme or metric"),
    scenario: str | None = typer.Option(None, "--scenario", help="patient, encounter, insurance, …"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
) -> None:
    """Lake tables by scenario and layer: description, owner, classification, rows, freshness, last check."""
    from rich.console import Console

    from medlake.lineage.catalog import catalog, search
    from medlake.listing import Column, listing_table, print_json

    entries = catalog()
    entries = search(entries, query) if query else entries
    entries = [e for e in entries if (not layer or e.layer == layer) and (not scenario or e.scenario == scenario)]
    if as_json:
        print_json([e.to_dict() for e in entries])
        return
    columns = [Column("scenario", wide=True), Column("table", max_width=32), Column("rows", "number"),
               Column("fresh"), Column("check"), Column("owner", wide=True), Column("class", wide=True),
               Column("description", "text")]
    rows = [
        (e.scenario, e.name, e.rows, e.freshness.strftime("%m-%d %H:%M") if e.freshness else None,
         e.last_check.get("outcome"), e.owner, f"{e.category}/{e.grade or '-'}", e.description)
        for e in entries
    ]
    console = Console()
    console.print(listing_table(columns, rows, console=console))


@lineage_app.command("build")
def build_command(checks_dir: Path = typer.Option(DEFAULT_CHECKS_DIR, "--checks-dir")) -> None:
    """Consolidate events, standards bindings and checks into the graph file."""
    try:
        path = _graph(None, checks_dir).save()
    except LineageError as exc:
        _fail(exc)
        return
    typer.echo(str(path))


def _saved() -> Any:
    from medlake.lineage.store import LineageGraph

    return LineageGraph.load()


def _print_hops(graph: Any, hops: dict[str, int]) -> None:
    for node, distance in sorted(hops.items(), key=lambda kv: (kv[1], graph.label(kv[0]))):
        typer.echo(f"[{distance}] {graph.kind(node):13} {graph.label(node)}")


@lineage_app.command("downstream")
def downstream_command(ref: str, max_hops: int | None = typer.Option(None, "--max-hops")) -> None:
    """Everything downstream of a dataset, column, job or standard."""
    try:
        graph = _saved()
        _print_hops(graph, graph.downstream(ref, max_hops))
    except LineageError as exc:
        _fail(exc)


@lineage_app.command("upstream")
def upstream_command(ref: str, max_hops: int | None = typer.Option(None, "--max-hops")) -> None:
    """Everything upstream of a dataset, column, job or check."""
    try:
        graph = _saved()
        _print_hops(graph, graph.upstream(ref, max_hops))
    except LineageError as exc:
        _fail(exc)


@lineage_app.command("columns")
def columns_command(ref: str) -> None:
    """Columns of a dataset."""
    try:
        typer.echo("\n".join(_saved().columns(ref)))
    except LineageError as exc:
        _fail(exc)


@lineage_app.command("jobs")
def jobs_command(ref: str) -> None:
    """Jobs reading and writing a dataset."""
    try:
        typer.echo(json.dumps(_saved().jobs(ref), indent=2))
    except LineageError as exc:
        _fail(exc)


@lineage_app.command("validate")
def validate_command(
    path: Path | None = typer.Argument(None, help="JSON-lines events (default: the event log)"),
) -> None:
    """Validate emitted events against the OpenLineage JSON schema."""
    from medlake.lineage.emitter import events_path
    from medlake.lineage.validation import validate_events_file

    try:
        count = validate_events_file(path or events_path())
    except (LineageError, OSError) as exc:
        _fail(exc)
        return
    typer.echo(f"{count} events valid")
