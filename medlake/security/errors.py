"""Errors of the security module."""

from __future__ import annotations

from medlake.errors import ConfigurationError, MedlakeError

__all__ = ["ClassificationError", "GrantError", "PolicyError", "SecurityError"]


class SecurityError(MedlakeError):
    """Base class of the security module's errors."""


class ClassificationError(SecurityError):
    """A classification cannot be recorded or a file cannot be classified (unknown category, grade out of 1..5,
    unreadable file); the message names the table/column or file."""


class GrantError(SecurityError):
    """An access request or decision is invalid: unknown grant id, a decision on a grant already decided, a period
    that ends before it starts, a grade out of 1..5."""


class PolicyError(ConfigurationError):
    """The grade-masking or de-identification policy YAML is malformed, or a role is not in it; the message names
    the file and key."""
