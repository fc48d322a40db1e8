"""Small shipped reference data (names, GB/T 2260 regions, ICD-10, drugs, service items, lab tests) and the
deterministic per-hospital local coding built on it."""

import lazy_loader

# Each name's module is imported on first use, so using one part never loads the others' libraries.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "catalogue": [
            "ReferenceDataError", "departments", "drugs", "given_name_chars", "hospitals", "icd10", "lab_tests",
            "regions", "service_items", "streets", "surnames"
        ],
        "institutions": ["INSURANCE_BUREAU", "Institution", "institution", "institutions"],
        "local_codes": [
            "institution_catalogue", "institution_mapping", "local_item_code", "local_item_name", "national_items"
        ],
    },
)
