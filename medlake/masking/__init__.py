"""De-identification (GB/T 39725-2020 style): keep, salted hash, partial masking, generalization, drop."""

import lazy_loader

# Each name's module is imported on first use, so using one part never loads the others' libraries.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "errors": ["MaskingConfigError", "MaskingError"],
        "operator": ["ColumnRule", "METHODS", "MaskConfig", "MaskOperator"],
    },
)
