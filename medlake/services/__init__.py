"""Data services: ``medlake serve`` (FastAPI) with patient 360, metric queries, catalog and lineage and configured
query services, behind authentication, role policy, rate limits, masking by grade and an append-only audit."""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    """``create_app`` loads FastAPI only when asked for (the CLI imports this package for ``medlake users``)."""
    if name == "create_app":
        from medlake.services.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
