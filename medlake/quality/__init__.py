"""Data quality: run standards-generated Soda checks, record results, act on failures (warn/quarantine/fail)."""

from medlake.quality.operator import QualityGateError, QualityOperator
from medlake.quality.runner import (
    RESULTS_TABLE,
    CheckResult,
    QualityRunError,
    append_results,
    failing_rows,
    flag_rows,
    run_checks,
    run_contract,
    table_contract,
)

__all__ = [
    "RESULTS_TABLE",
    "CheckResult",
    "QualityGateError",
    "QualityOperator",
    "QualityRunError",
    "append_results",
    "failing_rows",
    "flag_rows",
    "run_checks",
    "run_contract",
    "table_contract",
]
