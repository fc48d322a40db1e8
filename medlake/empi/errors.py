"""Errors raised by the EMPI package; all are MedlakeError subclasses."""

from __future__ import annotations

from medlake.errors import ConfigurationError, MedlakeError

__all__ = ["EmpiError", "FieldMapError", "ManualDecisionError"]


class EmpiError(MedlakeError):
    """Linkage could not run: missing model, unreadable input, inconsistent master patient index."""


class FieldMapError(EmpiError, ConfigurationError):
    """A field mapping names an unknown field or a column the input does not have."""


class ManualDecisionError(EmpiError):
    """A manual link/unlink decision is malformed (unknown decision, same record twice, unknown record)."""
