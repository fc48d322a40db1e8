"""The ``quality`` operator: run a table's generated checks at any workflow step, with an action per check.

Config (workflow YAML)::

    kind: quality
    table: patient                 # DWD table whose generated contract applies
    rules: all                     # or a list of rule ids
    actions: {fatal: fail, patient.id_number.id_check_digit: quarantine, warn: warn}
    record: true                   # append results to lake/quality/check_results

Actions: ``warn`` (step status WARN), ``quarantine`` (failing rows go to ``rejected`` with ``_reject_reason`` =
rule id, the first quarantining rule a row fails), ``fail`` (raise QualityGateError naming the rules). A rule id key
wins over a severity key; unlisted rules take their severity's default (fatal→fail, error→quarantine, else warn).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import narwhals as nw

from medlake.engine.base import SqlSession
from medlake.errors import ConfigurationError, MedlakeError
from medlake.lake.dwd import PARTITION_COLUMN
from medlake.operators.base import OperatorContext, OperatorResult, StepStatus, count_rows
from medlake.quality.runner import (
    REJECT_REASON,
    CheckResult,
    append_results,
    flag_session_rows,
    table_contract,
    verify_contract,
)
from medlake.standards.contracts import contract_rules
from medlake.standards.rules import ACTIONS, Rule

__all__ = ["QualityGateError", "QualityOperator"]


class QualityGateError(MedlakeError):
    """A check whose action is ``fail`` failed; names table, rules and failing counts."""

    def __init__(self, table: str, failures: list[CheckResult]) -> None:
        detail = ", ".join(f"{r.rule_id} ({r.failed_rows} rows, {r.severity})" for r in failures)
        super().__init__(f"{table}: quality gate failed: {detail}")
        self.table = table
        self.failures = failures


@dataclass
class QualityOperator:
    """Runs checks, applies actions. ``checks_dir`` overrides where generated contracts are read from."""

    table: str
    rules: str | list[str] = "all"
    actions: dict[str, str] = field(default_factory=dict)
    record: bool = True
    checks_dir: Path | None = None
    kind: str = "quality"

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.actions.items() if v not in ACTIONS}
        if bad:
            raise ConfigurationError(f"quality operator on {self.table}: actions {bad} not in {ACTIONS}")
        if self.rules != "all" and not isinstance(self.rules, list):
            raise ConfigurationError(f"quality operator on {self.table}: rules must be 'all' or a list of ids")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> QualityOperator:
        if "table" not in config:
            raise ConfigurationError("quality operator: 'table' is required")
        checks_dir = config.get("checks_dir")
        return cls(table=str(config["table"]), rules=config.get("rules", "all"),
                   actions=dict(config.get("actions") or {}), record=bool(config.get("record", True)),
                   checks_dir=Path(checks_dir) if checks_dir else None)

    def action_for(self, rule: Rule) -> str:
        return self.actions.get(rule.rule_id) or self.actions.get(rule.severity) or rule.default_action

    def run(self, frame: nw.LazyFrame, ctx: OperatorContext) -> OperatorResult:
        table = self.table.removeprefix("dwd.")
        contract = table_contract(table, None if self.rules == "all" else list(self.rules), self.checks_dir)
        rules = contract_rules(contract, table)
        # one check session for Soda and the flagging: the frame is read (polars: into Arrow) once
        checks = ctx.engine.check_session(table, frame, drop=(PARTITION_COLUMN,))
        try:
            return self._act(frame, ctx, table, rules, verify_contract(checks, table, contract, by_institution=False),
                             checks)
        finally:
            checks.close()

    def _act(
        self, frame: nw.LazyFrame, ctx: OperatorContext, table: str, rules: list[Rule], results: list[CheckResult],
        checks: SqlSession,
    ) -> OperatorResult:
        if self.record:
            append_results(results, ctx.settings)
        failed = {r.rule_id: r for r in results if r.failed or r.outcome == "error"}
        by_action: dict[str, list[Rule]] = {a: [] for a in ACTIONS}
        for rule in rules:
            if rule.rule_id in failed:
                by_action[self.action_for(rule)].append(rule)
        gate = [failed[r.rule_id] for r in by_action["fail"]]
        if gate:
            raise QualityGateError(table, gate)
        rows_in = count_rows(frame)
        # the DWD layout column is not governed data: the checks never see it and the output does not carry it
        rejected, kept, rows_rejected = None, frame.drop(PARTITION_COLUMN, strict=False), 0
        quarantine = [r for r in by_action["quarantine"] if r.predicate]
        if quarantine:  # rows are flagged where the checks ran; only the count comes back
            flagged = ctx.engine.persist(flag_session_rows(checks, table, quarantine))
            reason = nw.col(REJECT_REASON)
            rows_rejected = count_rows(flagged.filter(~reason.is_null()))
            kept = flagged.filter(reason.is_null()).drop(REJECT_REASON)
            if rows_rejected:
                rejected = flagged.filter(~reason.is_null())
        warned = by_action["warn"] + [r for r in by_action["quarantine"] if not r.predicate]
        status = StepStatus.WARN if warned or rejected is not None else StepStatus.OK
        metrics = {
            "checks": len(results),
            "failed_checks": sorted(failed),
            "warned_rules": [r.rule_id for r in warned],
            "quarantined_rules": [r.rule_id for r in quarantine],
        }
        if ctx.log is not None and failed:
            ctx.log.warning(f"{table}: {len(failed)} checks failed: {', '.join(sorted(failed))}")
        return OperatorResult(
            frame=kept, rejected=rejected, rows_in=rows_in, rows_out=rows_in - rows_rejected,
            rows_rejected=rows_rejected, status=status, metrics=metrics,
        )

