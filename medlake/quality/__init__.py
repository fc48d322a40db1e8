"""Data quality: run standards-generated Soda checks, record results, act on failures (warn/quarantine/fail)."""

import lazy_loader

# Each name's module is imported on first use, so using one part never loads the others' libraries.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "operator": ["QualityGateError", "QualityOperator"],
        "runner": [
            "CheckResult", "QualityRunError", "RESULTS_TABLE", "append_results", "flag_rows",
            "run_checks", "run_contract", "table_contract"
        ],
    },
)
