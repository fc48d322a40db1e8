"""Errors of the lineage package (subclasses of the platform's hierarchy)."""

from __future__ import annotations

from medlake.errors import MedlakeError

__all__ = ["EventValidationError", "LineageError"]


class LineageError(MedlakeError):
    """A lineage input (dataset location, column mapping, manifest, graph file) is malformed."""


class EventValidationError(LineageError):
    """An OpenLineage event does not match the OpenLineage JSON schema; the message names file, line and path."""

