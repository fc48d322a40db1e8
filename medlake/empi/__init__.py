"""EMPI: an incremental master patient index on Splink (Fellegi–Sunter) with Chinese-specific name handling."""

from __future__ import annotations

from medlake.empi.errors import EmpiError, FieldMapError, ManualDecisionError
from medlake.empi.field_map import FieldMap
from medlake.empi.index import LinkResult, MasterPatientIndex
from medlake.empi.model import ModelSettings
from medlake.empi.operator import EmpiOperator

__all__ = [
    "EmpiError",
    "EmpiOperator",
    "FieldMap",
    "FieldMapError",
    "LinkResult",
    "ManualDecisionError",
    "MasterPatientIndex",
    "ModelSettings",
]
