"""``medlake serve``, ``medlake users …`` and ``medlake audit`` (registered by medlake/cli.py)."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import datetime

import typer

from medlake.errors import MedlakeError
from medlake.listing import print_json

__all__ = ["audit_command", "serve_command", "users_app"]

users_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Users of the built-in token issuer")


def _fail(exc: Exception) -> None:
    typer.secho(str(exc), fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def serve_command(
    host: str = typer.Option(None, "--host", help="Address to listen on (default MEDLAKE_SERVE_HOST or 127.0.0.1)"),
    port: int = typer.Option(None, "--port", help="TCP port (default MEDLAKE_SERVE_PORT or 8000)"),
    layout: bool = typer.Option(False, "--layout", help="First Z-order the patient-keyed tables on their lookup "
                                "keys with 8,192-row groups (patient 360 point lookups)"),
) -> None:
    """Serve the data services (patient 360, metrics, catalog and lineage, configured services) over HTTP."""
    import uvicorn

    from medlake.config import settings
    from medlake.services.app import create_app

    current = settings()
    if layout:
        from medlake.lake.maintenance import layout_for_lookups
        from medlake.resources import LakeResource

        done = layout_for_lookups(LakeResource.from_settings(current).engine, current)
        typer.echo("laid out for lookups: " + ", ".join(f"{t} by {','.join(c)}" for t, c in done.items()))
    serve = replace(current.serve, host=host or current.serve.host, port=port or current.serve.port)
    try:
        app = create_app(replace(current, serve=serve))
    except MedlakeError as exc:
        _fail(exc)
        return
    uvicorn.run(app, host=serve.host, port=serve.port, log_level="warning", access_log=False)


@users_app.command("add")
def add_user_command(
    name: str = typer.Argument(..., help="User name"),
    role: str = typer.Option(..., "--role", help="clinician, analyst, fund_supervisor, cdc_officer, "
                             "data_steward or admin"),
) -> None:
    """Add a user (or replace its role and password); the password is read from standard input."""
    from medlake.config import settings
    from medlake.services.users import UserStore

    line = sys.stdin.readline() if not sys.stdin.isatty() else typer.prompt("password", hide_input=True)
    try:
        user = UserStore(settings()).add(name, role, line.rstrip("\r\n"))
    except MedlakeError as exc:
        _fail(exc)
        return
    typer.echo(f"user {user.name} ({user.role}) saved")


@users_app.command("list")
def list_users_command(as_json: bool = typer.Option(False, "--json")) -> None:
    """The users and their roles."""
    from medlake.config import settings
    from medlake.services.users import UserStore

    found = UserStore(settings()).list()
    if as_json:
        print_json([{"name": u.name, "role": u.role} for u in found])
        return
    for user in found:
        typer.echo(f"{user.name:<32} {user.role}")


@users_app.command("remove")
def remove_user_command(name: str) -> None:
    """Remove a user (tokens already issued stay valid until they expire)."""
    from medlake.config import settings
    from medlake.services.users import UserStore

    if not UserStore(settings()).remove(name):
        _fail(MedlakeError(f"no user {name!r}"))
    typer.echo(f"user {name} removed")


def audit_command(
    user: str = typer.Option("", "--user"),
    service: str = typer.Option("", "--service", help="e.g. patient360, metrics, service/encounters_by_department"),
    outcome: str = typer.Option("", "--outcome", help="ok, unauthenticated, denied, invalid, rate_limited, ..."),
    since: datetime | None = typer.Option(None, "--since", help="ISO time (UTC when no offset is given)"),
    limit: int = typer.Option(50, "--limit", min=1, max=100_000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The service's audit records (committed ones), newest first."""
    from datetime import UTC

    from medlake.config import settings
    from medlake.resources import LakeResource
    from medlake.services.audit import read_audit

    current = settings()
    moment = since.replace(tzinfo=since.tzinfo or UTC) if since else None
    found = read_audit(LakeResource.from_settings(current).engine, current, user=user, service=service,
                       outcome=outcome, since=moment, limit=limit).to_pylist()
    if as_json:
        print_json([{**r, "time": r["time"].isoformat()} for r in found])
        return
    for r in found:
        typer.echo(f"{r['time']:%Y-%m-%d %H:%M:%S} {r['user'] or '-':<16} {r['role'] or '-':<15} {r['method']:<5} "
                   f"{r['path']:<40} {r['status']} {r['outcome']:<15} rows={r['rows']} {r['latency_ms']:.1f} ms"
                   f"{' grant=' + r['grant_id'] if r['grant_id'] else ''}")
