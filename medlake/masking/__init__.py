"""De-identification (GB/T 39725-2020 style): keep, salted hash, partial masking, generalization, drop."""

from __future__ import annotations

from medlake.masking.errors import MaskingConfigError, MaskingError
from medlake.masking.hashing import hash_columns, salted_sha256
from medlake.masking.operator import METHODS, ColumnRule, MaskConfig, MaskOperator

__all__ = ["METHODS", "ColumnRule", "MaskConfig", "MaskOperator", "MaskingConfigError", "MaskingError",
           "hash_columns", "salted_sha256"]
