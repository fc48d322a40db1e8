"""Transcoding: local drug / service-item / diagnosis codes → national codes, with a review table for the rest."""

from __future__ import annotations

from medlake.transcode.errors import TranscodeConfigError, TranscodeError
from medlake.transcode.mappings import FrameMappings, MappingSource, RegistryMappings
from medlake.transcode.operator import CATEGORIES, TranscodeConfig, TranscodeOperator
from medlake.transcode.review import review_path
from medlake.transcode.suggest import pinyin_reading, suggest_codes

__all__ = [
    "CATEGORIES",
    "FrameMappings",
    "MappingSource",
    "RegistryMappings",
    "TranscodeConfig",
    "TranscodeConfigError",
    "TranscodeError",
    "TranscodeOperator",
    "pinyin_reading",
    "review_path",
    "suggest_codes",
]
