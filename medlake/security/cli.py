"""``medlake classify`` (a file, or the lake's tables) and ``medlake access`` (request, approve, reject, revoke,
list access grants). Registered by medlake/cli.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from medlake.errors import MedlakeError
from medlake.listing import print_json

__all__ = ["access_app", "classification_app", "classify_command"]

access_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Request and approve access grants")
classification_app = typer.Typer(no_args_is_help=True, add_completion=False,
                                 help="Column classification and grading of the lake's tables (GB/T 39725)")


def _fail(exc: Exception) -> None:
    typer.secho(str(exc), fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _lake() -> Any:
    from medlake.config import settings
    from medlake.resources import LakeResource

    return LakeResource.from_settings(settings())


def _print_rows(headers: list[str], rows: list[list[Any]], title: str, *, numbers: int = 0, text: str = "") -> None:
    """A listing; the last ``numbers`` headers before the ``text`` column (if any) are right-aligned numbers."""
    from rich.console import Console

    from medlake.listing import Column, listing_table

    kinds = {h: "number" for h in headers[len(headers) - numbers:]} if numbers else {}
    if text:
        kinds[text] = "text"
    console = Console()
    console.print(listing_table([Column(h, kinds.get(h, "key")) for h in headers], rows,  # type: ignore[arg-type]
                                console=console, title=title))


def classify_command(
    path: Path = typer.Argument(..., help="A .csv (UTF-8 or GBK) or .parquet file"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
) -> None:
    """Detect personal information per column of a file and suggest its GB/T 39725 category and grade."""
    from medlake.security.files import classify_file

    try:
        columns = classify_file(path)
    except MedlakeError as exc:
        _fail(exc)
        return
    if as_json:
        print_json([c.to_dict() for c in columns])
        return
    _print_rows(["column", "pii type", "hit ratio", "category", "grade"],
                [[c.column, c.pii_type or "none", f"{c.hit_ratio:.2f}", c.category_zh, c.grade] for c in columns],
                str(path))


def _print_classes(classes: list[Any], as_json: bool, title: str) -> None:
    if as_json:
        print_json([c.to_dict() for c in classes])
        return
    _print_rows(["table", "column", "category", "grade", "pii type", "source", "by"],
                [[c.table, c.column, c.category.label_zh, c.grade, c.pii_type, c.source, c.updated_by]
                 for c in classes], title)


@classification_app.command("suggest")
def suggest_command(
    tables: list[str] = typer.Argument(None, help="Tables as layer.name (default: every governed table)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Sample tables with the PII detector and record suggested classes (a steward's classes are kept)."""
    from medlake.security.classification import ClassificationCatalog

    lake = _lake()
    try:
        written = ClassificationCatalog(lake.engine, lake.settings).suggest_all(tables or None)
    except MedlakeError as exc:
        _fail(exc)
        return
    _print_classes(written, as_json, f"{len(written)} classes recorded")


@classification_app.command("list")
def list_classes_command(
    table: str | None = typer.Argument(None, help="Only this table (layer.name)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The current class of every classified column."""
    from medlake.security.classification import ClassificationCatalog

    lake = _lake()
    catalog = ClassificationCatalog(lake.engine, lake.settings)
    try:
        classes = list(catalog.for_table(table).values()) if table else catalog.all()
    except MedlakeError as exc:
        _fail(exc)
        return
    _print_classes(classes, as_json, "column classification")


@classification_app.command("set")
def set_class_command(
    table: str = typer.Argument(..., help="layer.name"),
    column: str = typer.Argument(...),
    category: str = typer.Option(..., "--category", help="e.g. 'personal attributes' or 个人属性数据"),
    grade: int = typer.Option(..., "--grade", min=1, max=5),
    by: str = typer.Option(..., "--by", help="The data steward making the change"),
) -> None:
    """Record a data steward's category and grade for a column."""
    from medlake.security.classification import ClassificationCatalog

    lake = _lake()
    try:
        record = ClassificationCatalog(lake.engine, lake.settings).set(table, column, category=category, grade=grade,
                                                                        by=by)
    except MedlakeError as exc:
        _fail(exc)
        return
    typer.echo(f"{record.table}.{record.column}: {record.category.label_zh}, grade {record.grade} "
               f"(by {record.updated_by})")


def _store() -> Any:
    from medlake.security.grants import GrantStore

    lake = _lake()
    return GrantStore(lake.engine, lake.settings)


@access_app.command("request")
def request_command(
    resource: str = typer.Argument(..., help="A table (layer.name) or a configured service"),
    user: str = typer.Option(..., "--user"),
    grade: int = typer.Option(..., "--grade", min=1, max=5, help="Highest grade to see unmasked"),
    purpose: str = typer.Option(..., "--purpose"),
    days: float = typer.Option(30.0, "--days", min=0.0, help="How long the grant lasts once approved"),
) -> None:
    """Ask for access; prints the grant id a steward approves or rejects."""
    try:
        grant_id = _store().request(user, resource, grade, purpose, datetime.now(UTC) + timedelta(days=days))
    except MedlakeError as exc:
        _fail(exc)
        return
    typer.echo(grant_id)


@access_app.command("approve")
def approve_command(grant_id: str = typer.Argument(...), steward: str = typer.Option(..., "--steward")) -> None:
    """Approve a pending request."""
    try:
        grant = _store().approve(grant_id, steward)
    except MedlakeError as exc:
        _fail(exc)
        return
    typer.echo(f"{grant.grant_id} approved: {grant.user} on {grant.resource} up to grade {grant.grade} until "
               f"{grant.valid_until.isoformat()}")


_STEWARD = typer.Option(..., "--steward")
_REASON = typer.Option(..., "--reason")


def _end_grant(decision: str, grant_id: str, steward: str, reason: str) -> None:
    """Reject (a pending request) or revoke (an approved grant), with the reason."""
    try:
        grant = getattr(_store(), decision)(grant_id, steward, reason)
    except MedlakeError as exc:
        _fail(exc)
        return
    typer.echo(f"{grant.grant_id} {grant.status}: {reason}")


@access_app.command("reject")
def reject_command(grant_id: str = typer.Argument(...), steward: str = _STEWARD, reason: str = _REASON) -> None:
    """Reject a pending request, with the reason."""
    _end_grant("reject", grant_id, steward, reason)


@access_app.command("revoke")
def revoke_command(grant_id: str = typer.Argument(...), steward: str = _STEWARD, reason: str = _REASON) -> None:
    """End an approved grant before it expires."""
    _end_grant("revoke", grant_id, steward, reason)


@access_app.command("list")
def list_command(
    user: str | None = typer.Option(None, "--user"),
    active: bool = typer.Option(False, "--active", help="Only grants in force now"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Grants and their state, newest request first."""
    grants = [g for g in _store().grants() if (user is None or g.user == user) and (not active or g.is_active())]
    if as_json:
        print_json([g.to_dict() for g in grants])
        return
    _print_rows(["grant", "user", "resource", "grade", "status", "until", "by"],
                [[g.grant_id[:12], g.user, g.resource, g.grade,
                  "expired" if g.status == "approved" and not g.is_active() else g.status,
                  g.valid_until.strftime("%Y-%m-%d %H:%M"), g.decided_by] for g in grants], "access grants")


@classification_app.command("risk")
def risk_command(
    table: str | None = typer.Argument(None, help="Only this extract (layer.name)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Re-identification risk measured on each de-identified extract run (k, l, unique records, suppression)."""
    from medlake.security.deidentify import risk_history

    lake = _lake()
    rows = risk_history(lake.engine, lake.settings, table)
    if as_json:
        print_json([{**r, "checked_at": r["checked_at"].isoformat()} for r in rows])
        return
    _print_rows(["table", "purpose", "levels", "records", "k", "l", "unique", "suppressed"],
                [[r["table"], r["purpose"], r["levels"], r["records"], r["k"], r["l_diversity"], r["unique_records"],
                  r["records_suppressed"]] for r in rows],
                "re-identification risk (GB/T 37964)", numbers=5, text="levels")
