"""Errors of workflow files and runs."""

from __future__ import annotations

from typing import Any

from medlake.errors import ConfigurationError, MedlakeError

__all__ = ["WorkflowError", "WorkflowStepFailed"]


class WorkflowError(ConfigurationError):
    """A workflow YAML is malformed. The message reads ``<file>:<line>: <where>: <what was expected>``."""

    def __init__(self, message: str, *, file: str = "", line: int | None = None, where: str = "") -> None:
        prefix = ":".join(p for p in (file, str(line) if line else "") if p)
        text = ": ".join(p for p in (prefix, where, message) if p)
        super().__init__(text)
        self.reason = message
        self.file = file
        self.line = line
        self.where = where


class WorkflowStepFailed(MedlakeError):
    """An operator reported status ``failed``; ``steps`` holds the reports up to and including it."""

    def __init__(self, message: str, steps: list[Any]) -> None:
        super().__init__(message)
        self.steps = steps
