"""``medlake standards``: list releases, show an element or value domain, diff releases, generate checks,
sync the base release with the shipped reference data."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["standards_app"]

standards_app = typer.Typer(no_args_is_help=True, add_completion=False,
                            help="Versioned standards registry and the checks generated from it")


@standards_app.command("list")
def list_command(
    version: str = typer.Option(None, help="release (default: newest)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables"),
) -> None:
    """Releases, then the elements and value domains of one release."""
    from rich.console import Console

    from medlake.listing import Column, listing_table, print_json
    from medlake.standards.registry import Registry

    reg = Registry.load(version)
    if as_json:
        print_json({"releases": Registry.versions(), "version": reg.version,
                    "elements": [e.as_dict() for e in reg.elements],
                    "value_domains": [{"id": d.id, "name": d.name, "standard": d.standard, "format": d.format,
                                       "codes": len(d.codes)} for d in reg.value_domains]})
        return
    console = Console()
    console.print(f"releases: {', '.join(Registry.versions())}")
    element_columns = [Column("id"), Column("dtype"), Column("req"), Column("value domain", max_width=16),
                       Column("format/length", "text"), Column("name", "text")]
    elements = [(e.id, e.dtype, "yes" if e.required else "", e.value_domain or "",
                 e.format or (f"len {e.length}" if e.length else f"≤{e.max_length}" if e.max_length else ""), e.name)
                for e in reg.elements]
    console.print(listing_table(element_columns, elements, console=console, title=f"data elements ({reg.version})"))
    domain_columns = [Column("id", max_width=24), Column("codes", "number"), Column("standard", "text"),
                      Column("name", "text")]
    domains = [(d.id, str(len(d.codes)) if d.codes else (d.format or ""), d.standard, d.name)
               for d in reg.value_domains]
    console.print(listing_table(domain_columns, domains, console=console, title=f"value domains ({reg.version})"))


@standards_app.command("show")
def show_command(item_id: str = typer.Argument(..., help="element id (DE…) or value domain id"),
                 version: str = typer.Option(None, help="release (default: newest)")) -> None:
    """One data element (with its DWD bindings) or one value domain (with its codes)."""
    import yaml

    from medlake.standards.model import StandardNotFoundError
    from medlake.standards.registry import Registry

    reg = Registry.load(version)
    try:
        element = reg.element(item_id)
        payload = {**element.as_dict(), "bound_to": [f"{b.table}.{b.column}" for b in reg.bindings
                                                    if b.element_id == item_id]}
    except StandardNotFoundError:
        try:
            domain = reg.value_domain(item_id)
        except StandardNotFoundError:
            typer.echo(f"release {reg.version} has no element or value domain {item_id!r}", err=True)
            raise typer.Exit(1) from None
        payload = {"id": domain.id, "name": domain.name, "standard": domain.standard, "format": domain.format,
                   "codes": domain.codes}
    typer.echo(yaml.safe_dump({"version": reg.version, **payload}, allow_unicode=True, sort_keys=False))


@standards_app.command("diff")
def diff_command(v1: str, v2: str) -> None:
    """What changed from release V1 to release V2."""
    import dataclasses

    import yaml

    from medlake.standards.diff import diff

    result = dataclasses.asdict(diff(v1, v2))
    typer.echo(yaml.safe_dump(result, allow_unicode=True, sort_keys=False, default_flow_style=None))


@standards_app.command("generate-checks")
def generate_checks_command(
    version: str = typer.Option(None, help="release (default: newest)"),
    out_dir: Path = typer.Option(None, "--out", help="folder (default: checks/generated)"),
) -> None:
    """Write one Soda contract per DWD table from the standards."""
    from medlake.standards.contracts import generate_checks
    from medlake.standards.registry import Registry
    from medlake.standards.rules import derive_rules

    reg = Registry.load(version)
    paths = generate_checks(reg, out_dir)
    rules = [r for t in reg.tables for r in derive_rules(reg, t)]
    typer.echo(f"release {reg.version}: {len(rules)} checks of {len({r.check_type for r in rules})} types "
               f"in {len(paths)} files")
    for p in paths:
        typer.echo(f"  {p}")


@standards_app.command("sync-reference")
def sync_reference_command(
    version: str = typer.Option("2023.1", help="release to write into (the base release)"),
    hospitals: int = typer.Option(3, help="synthetic hospitals that get versioned drug/service mapping files"),
) -> None:
    """Write medlake/reference's code lists and demo mapping tables into a release (then regenerate checks)."""
    from medlake.standards.reference_sync import reference_drift, sync_reference
    from medlake.standards.registry import Registry

    changed = sync_reference(version, hospitals=hospitals)
    typer.echo(f"release {version}: {len(changed)} files changed")
    for path in changed:
        typer.echo(f"  {path}")
    for release in Registry.versions():
        for problem in reference_drift(Registry.load(release), hospitals):
            typer.echo(f"  drift: {problem}", err=True)
