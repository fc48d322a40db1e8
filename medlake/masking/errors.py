"""Errors of the masking operator."""

from __future__ import annotations

from medlake.errors import ConfigurationError, MedlakeError

__all__ = ["MaskingConfigError", "MaskingError"]


class MaskingError(MedlakeError):
    """Masking cannot run: a listed column is missing or the salt's environment variable is not set."""


class MaskingConfigError(ConfigurationError):
    """The ``mask`` step's configuration is malformed; the message names the column/key and what was expected."""
