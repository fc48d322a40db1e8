"""Errors of the transcoding operator."""

from __future__ import annotations

from medlake.errors import ConfigurationError, MedlakeError

__all__ = ["TranscodeConfigError", "TranscodeError"]


class TranscodeError(MedlakeError):
    """Transcoding cannot run: a column is missing or the mapping tables cannot be read."""


class TranscodeConfigError(ConfigurationError):
    """The ``transcode`` step's configuration is malformed; the message names the key and what was expected."""
