"""``medlake impact``, ``medlake catalog`` and ``medlake lineage …`` (graph queries). The lead registers them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from medlake.lineage.errors import LineageError
from medlake.listing import print_json

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
    if as_json:
        typer.echo(report.to_json())
    else:
        _print_impact(report)


def _print_impact(report: Any) -> None:
    """The report's text, with each kind's items as a table whose path is cut to the terminal's width."""
    from rich.console import Console

    from medlake.listing import Column, listing_table

    head, *_ = report.to_text().split("\n", 1)
    console = Console()
    console.print(head, markup=False, highlight=False, overflow="ellipsis", no_wrap=True)
    for change in report.unknown:
        console.print(f"  ! {change.kind} {change.id} is not referenced by any column", markup=False)
    shown = False
    for kind in report.to_dict()["summary"]:
        chosen = [i for i in report.items if i.kind == kind and i.hops > 0]
        if chosen:
            shown = True
            rows = [(f"[{i.hops}] {i.name}", " → ".join(i.path)) for i in chosen]
            console.print(listing_table([Column("item", "text"), Column("via", "text")], rows, console=console,
                                        title=f"{kind} ({len(chosen)})"))
    if not shown:
        console.print("  nothing affected")


def catalog_command(
    query: str | None = typer.Argument(None, help="Search text: a table name or a column name"),
    layer: str | None = typer.Option(None, "--layer", help="ods, dwd, theme or metric"),
    scenario: str | None = typer.Option(None, "--scenario", help="patient, encounter, insurance, …"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
) -> None:
    """Lake tables by scenario and layer: description, owner, classification, rows, freshness, last check."""
    from rich.console import Console

    from medlake.lineage.catalog import catalog, search
    from medlake.listing import Column, listing_table

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
    from medlake.lineage.graph import LineageGraph

    return LineageGraph.load()


_JSON = typer.Option(False, "--json", help="Print JSON instead of text")
_MAX_HOPS = typer.Option(None, "--max-hops")


def _print_hops(graph: Any, hops: dict[str, int], as_json: bool) -> None:
    ordered = sorted(hops.items(), key=lambda kv: (kv[1], graph.label(kv[0])))
    if as_json:
        print_json([{"node": node, "kind": graph.kind(node), "label": graph.label(node), "hops": distance}
                    for node, distance in ordered])
        return
    for node, distance in ordered:
        typer.echo(f"[{distance}] {graph.kind(node):13} {graph.label(node)}")


@lineage_app.command("downstream")
def downstream_command(ref: str, max_hops: int | None = _MAX_HOPS, as_json: bool = _JSON) -> None:
    """Everything downstream of a dataset, column, job or standard."""
    try:
        graph = _saved()
        _print_hops(graph, graph.downstream(ref, max_hops), as_json)
    except LineageError as exc:
        _fail(exc)


@lineage_app.command("upstream")
def upstream_command(ref: str, max_hops: int | None = _MAX_HOPS, as_json: bool = _JSON) -> None:
    """Everything upstream of a dataset, column, job or check."""
    try:
        graph = _saved()
        _print_hops(graph, graph.upstream(ref, max_hops), as_json)
    except LineageError as exc:
        _fail(exc)


@lineage_app.command("columns")
def columns_command(ref: str, as_json: bool = _JSON) -> None:
    """Columns of a dataset."""
    try:
        columns = _saved().columns(ref)
    except LineageError as exc:
        _fail(exc)
        return
    if as_json:
        print_json(columns)
        return
    typer.echo("\n".join(columns))


@lineage_app.command("jobs")
def jobs_command(ref: str, as_json: bool = _JSON) -> None:
    """Jobs reading and writing a dataset."""
    try:
        jobs = _saved().jobs(ref)
    except LineageError as exc:
        _fail(exc)
        return
    if as_json:
        print_json(jobs)
        return
    for direction, names in jobs.items():
        typer.echo(f"{direction}: {', '.join(names) or '-'}")


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
