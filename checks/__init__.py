"""Dagster asset checks from the generated contracts in ``checks/generated`` (one multi-asset check per DWD table).

Checks run on the ``lake`` resource's engine (DuckDB for polars, soda-sparkdf for spark) over its lake.
Each rule is an AssetCheckSpec on its table's asset, ``blocking`` when its severity is fatal. Running the check
runs Soda over the table's Delta folder, appends every result to ``lake/quality/check_results`` and reports one
AssetCheckResult per rule (ERROR severity for fatal/error rules, WARN otherwise).
"""


from collections.abc import Callable
from pathlib import Path

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    multi_asset_check,
)

from medlake.layers import Layer
from medlake.quality.runner import append_results, run_checks
from medlake.resources import LakeResource
from medlake.standards.contracts import rules_for
from medlake.standards.registry import Registry

__all__ = ["GENERATED_DIR", "build_asset_checks", "check_name"]

GENERATED_DIR = Path(__file__).parent / "generated"


def check_name(rule_id: str) -> str:
    """Dagster-safe check name of a rule id (``patient.id_number.format`` → ``patient__id_number__format``)."""
    return rule_id.replace(".", "__")


def _table_checks(table: str, key: AssetKey, checks_dir: Path) -> AssetChecksDefinition:
    rules = rules_for(table, checks_dir)
    specs = [
        AssetCheckSpec(name=check_name(r.rule_id), asset=key, blocking=r.blocking,
                       description=f"[{r.category}/{r.subcategory}, {r.severity}] {r.description}"[:1000])
        for r in rules
    ]

    @multi_asset_check(specs=specs, name=f"quality_{table}", can_subset=False,
                       description=f"standards-generated checks of DWD {table}")
    def _run(context: AssetCheckExecutionContext, lake: LakeResource):  # type: ignore[no-untyped-def]
        conf = lake.settings
        results = run_checks(table, conf.table_path(Layer.DWD.value, table), checks_dir=checks_dir,
                             engine=lake.engine)
        append_results(results, conf)
        for r in results:
            yield AssetCheckResult(
                asset_key=key, check_name=check_name(r.rule_id), passed=r.outcome == "pass",
                severity=AssetCheckSeverity.ERROR if r.severity in ("fatal", "error") else AssetCheckSeverity.WARN,
                metadata={"failed_rows": r.failed_rows, "category": r.category, "severity": r.severity,
                          "outcome": r.outcome, "by_institution": dict(r.by_institution),
                          "message": r.message},
            )

    return _run


def build_asset_checks(
    asset_key_for_table: Callable[[str], AssetKey], checks_dir: Path | None = None, standards_dir: Path | None = None
) -> list[AssetChecksDefinition]:
    """One multi-asset check per DWD table bound in the newest standards release under ``standards_dir``."""
    folder = checks_dir or GENERATED_DIR
    return [_table_checks(t, asset_key_for_table(t), folder) for t in Registry.load(data_dir=standards_dir).tables]
