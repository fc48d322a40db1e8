"""Small shipped reference data (names, GB/T 2260 regions, ICD-10, drugs, service items, lab tests) and the
deterministic per-hospital local coding built on it."""

from medlake.reference.catalogue import (
    ReferenceDataError,
    departments,
    drugs,
    given_name_chars,
    hospitals,
    icd10,
    lab_tests,
    regions,
    service_items,
    streets,
    surnames,
)
from medlake.reference.institutions import INSURANCE_BUREAU, Institution, institution, institutions
from medlake.reference.local_codes import (
    institution_catalogue,
    institution_mapping,
    local_item_code,
    local_item_name,
    national_items,
)

__all__ = [
    "INSURANCE_BUREAU",
    "Institution",
    "ReferenceDataError",
    "departments",
    "drugs",
    "given_name_chars",
    "hospitals",
    "icd10",
    "institution",
    "institution_catalogue",
    "institution_mapping",
    "institutions",
    "lab_tests",
    "local_item_code",
    "local_item_name",
    "national_items",
    "regions",
    "service_items",
    "streets",
    "surnames",
]
