"""Medical data security: column classification and grading (GB/T 39725-2020), the Chinese PII detector, masking
by grade, access grants and re-identification risk (GB/T 37964-2019)."""

import lazy_loader

# Each name's module is imported on first use, so using one part never loads the others' libraries.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "classification": ["Category", "ClassificationCatalog", "ColumnClass", "governed_tables", "suggest_class"],
        "deidentify": ["DeidentifyOperator", "Purpose", "RiskReport", "measure_risk", "purposes", "record_risk",
                       "risk_history"],
        "errors": ["ClassificationError", "GrantError", "PolicyError", "SecurityError"],
        "files": ["FileColumn", "classify_file"],
        "grade_masking": ["GradePolicy", "MaskedFrame", "ROLES", "default_policy", "mask_by_grade"],
        "grants": ["Grant", "GrantStore"],
        "pii": ["Detection", "PiiType", "detect_column", "detect_value"],
    },
)
