"""The ``medlake`` command line. Each capability registers its commands here; heavy imports stay inside them."""

from __future__ import annotations

import typer

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help="medlake — medical lakehouse on Delta Lake")


def _register() -> None:
    """Sub-command groups, one line each (modules keep their own typer apps)."""
    from medlake.synth.cli import synth_command

    app.command("synth")(synth_command)


def main() -> None:
    _register()
    app()
