"""EMPI: an incremental master patient index on Splink (Fellegi–Sunter) with Chinese-specific name handling."""

import lazy_loader

# Each name's module is imported on first use, so using one part never loads the others' libraries.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "errors": ["EmpiError", "FieldMapError", "ManualDecisionError"],
        "field_map": ["FieldMap"],
        "index": ["LinkResult", "MasterPatientIndex"],
        "model": ["ModelSettings"],
        "operator": ["EmpiOperator"],
    },
)
