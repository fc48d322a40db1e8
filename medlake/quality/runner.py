"""Run a table's generated checks with Soda Core v4 on the engine's SQL session, and record the results.

The engine opens a check session (:meth:`medlake.engine.base.Engine.check_session`) where the data, read once and
optionally filtered to one batch, is the view ``main.<table>``: DuckDB over Arrow data on the polars engine, a
cached temp view on Spark. Soda verifies the table's contract there; failing counts per institution come from one
extra grouped pass over the predicates of the rules that found failing rows (rules without failures need no spread).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import narwhals as nw
import pyarrow as pa
import yaml

from medlake.config import LakePath, Settings, is_remote
from medlake.config import settings as current_settings
from medlake.engine import Engine, get_engine
from medlake.engine.base import CheckData, SqlSession
from medlake.errors import MedlakeError
from medlake.lake.dwd import PARTITION_COLUMN
from medlake.quality.lookups import register_lookups
from medlake.standards.contracts import DATA_SOURCE_NAME, contract_rules, load_contract, select_checks
from medlake.standards.rules import Rule

__all__ = [
    "REJECT_REASON",
    "RESULTS_TABLE",
    "CheckResult",
    "QualityRunError",
    "append_results",
    "flag_rows",
    "flag_session_rows",
    "open_table",
    "run_checks",
    "run_contract",
    "table_contract",
    "verify_contract",
]

RESULTS_TABLE = ("quality", "check_results")
REJECT_REASON = "_reject_reason"
# missing_count comes last: invalid and duplicate checks report it too
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_COUNT_KEYS = ("failed_rows_count", "invalid_count", "duplicate_count", "missing_count")


class QualityRunError(MedlakeError):
    """Soda could not run a contract (bad contract, missing column, engine error)."""


@dataclass
class CheckResult:
    rule_id: str
    table: str
    column: str | None
    check_type: str
    category: str
    subcategory: str
    severity: str
    outcome: str  # pass | fail | warn | error
    failed_rows: int = 0
    rows_tested: int = 0
    by_institution: dict[str, int] = field(default_factory=dict)
    batch_id: str | None = None
    standard_version: str = ""
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome in ("fail", "warn")


def open_table(delta_path: LakePath | str) -> pa.dataset.Dataset:
    """A Delta table (local path or object-store URI) as a lazily scanned pyarrow dataset."""
    from medlake.engine.duckdb_sql import open_delta_dataset

    return open_delta_dataset(delta_path)


def _engine(engine: Engine | None) -> Engine:
    return engine if engine is not None else get_engine(current_settings().engine)


def _verify(source: Any, contract_path: Path) -> Any:
    from soda_core.contracts import verify_contract_locally

    session = verify_contract_locally(data_sources=[source], contract_file_path=str(contract_path))
    results = session.contract_verification_results
    if not results:
        raise QualityRunError(f"{contract_path}: Soda returned no results: {session.get_errors_str()}")
    return results[0]


def _by_institution(con: SqlSession, table: str, rules: list[Rule]) -> dict[str, dict[str, int]]:
    row_rules = [r for r in rules if r.predicate]
    if not row_rules:
        return {}
    flags = ", ".join(f"({r.predicate}) AS _r{i}" for i, r in enumerate(row_rules))
    sums = ", ".join(f"count_if(coalesce(_r{i}, false))" for i in range(len(row_rules)))
    sql = (f'SELECT institution_code, {sums} FROM (SELECT institution_code, {flags} FROM main."{table}") '
           "GROUP BY institution_code ORDER BY institution_code")
    out: dict[str, dict[str, int]] = {r.rule_id: {} for r in row_rules}
    for row in con.execute(sql):
        for rule, count in zip(row_rules, row[1:], strict=True):
            if count:
                out[rule.rule_id][str(row[0])] = int(count)
    return out


def _outcome(check_result: Any, rule: Rule) -> str:
    name = str(getattr(check_result.outcome, "name", check_result.outcome)).upper()
    if name == "PASSED":
        return "pass"
    if name in ("FAILED", "WARN", "WARNED"):
        return "fail" if rule.severity in ("fatal", "error") else "warn"
    return "error"


def _soda_results(table: str, rules: list[Rule], verification: Any, batch_id: str | None) -> dict[str, CheckResult]:
    by_id = {r.rule_id: r for r in rules}
    seen: dict[str, CheckResult] = {}
    for cr in verification.check_results:
        attrs = getattr(cr.check, "attributes", None) or {}
        rule = by_id.get(attrs.get("rule_id") or cr.check.qualifier or "")
        if rule is None:
            continue
        diag = cr.diagnostic_metric_values or {}
        failed = next((int(diag[k]) for k in _COUNT_KEYS if diag.get(k) is not None), 0)
        seen[rule.rule_id] = CheckResult(
            rule_id=rule.rule_id, table=table, column=rule.column, check_type=rule.check_type,
            category=rule.category, subcategory=rule.subcategory, severity=rule.severity,
            outcome=_outcome(cr, rule), failed_rows=failed,
            rows_tested=int(diag.get("check_rows_tested") or diag.get("dataset_rows_tested") or 0),
            batch_id=batch_id, standard_version=str(rule.extra.get("standard_version", "")),
        )
    return seen


def run_contract(
    table: str,
    data: CheckData,
    contract: dict[str, Any],
    *,
    batch_id: str | None = None,
    by_institution: bool = True,
    engine: Engine | None = None,
) -> list[CheckResult]:
    """Run a generated contract (mapping) over ``data`` (a frame, an Arrow table or a Delta table path) with Soda on
    ``engine``'s SQL session (default: the engine ``MEDLAKE_ENGINE`` names); one result per rule."""
    rules = contract_rules(contract, table)
    if not rules:
        return []
    con = _engine(engine).check_session(table, data, batch_id=batch_id, drop=(PARTITION_COLUMN,))
    try:
        return verify_contract(con, table, contract, batch_id=batch_id, by_institution=by_institution)
    finally:
        con.close()


def verify_contract(
    con: SqlSession, table: str, contract: dict[str, Any], *, batch_id: str | None = None, by_institution: bool = True
) -> list[CheckResult]:
    """Run a generated contract with Soda over ``main.<table>`` of an open check session (see
    :meth:`medlake.engine.base.Engine.check_session`); one result per rule."""
    rules = contract_rules(contract, table)
    if not rules:
        return []
    register_lookups(con, table, rules)
    with tempfile.TemporaryDirectory(prefix="medlake-soda-") as tmp:
        path = Path(tmp) / f"{table}.yaml"
        text = yaml.dump(con.soda_contract(contract, DATA_SOURCE_NAME), Dumper=_DUMPER, allow_unicode=True,
                         sort_keys=False)
        path.write_text(text, encoding="utf-8")
        verification = _verify(con.soda_data_source(DATA_SOURCE_NAME), path)
    seen = _soda_results(table, rules, verification, batch_id)
    if by_institution:  # one grouped pass over the predicates of the rules Soda found failing rows for
        failing = [r for r in rules if r.rule_id in seen and seen[r.rule_id].failed_rows]
        counts = _by_institution(con, table, failing)
        for rule_id, spread in counts.items():
            seen[rule_id].by_institution = spread
    errors = verification.get_errors_str() if verification.has_errors else ""
    results = []
    for rule in rules:
        result = seen.get(rule.rule_id) or CheckResult(
            rule_id=rule.rule_id, table=table, column=rule.column, check_type=rule.check_type,
            category=rule.category, subcategory=rule.subcategory, severity=rule.severity, outcome="error",
            batch_id=batch_id, message=(errors or "Soda returned no result for this check")[:2000],
        )
        results.append(result)
    return results


def flag_rows(table: str, data: CheckData, rules: list[Rule], *, engine: Engine | None = None) -> nw.LazyFrame:
    """``data`` (as ``run_contract`` takes it) with ``REJECT_REASON``: the id of the first of ``rules`` (row-level
    ones, in the order given) that the row fails, null when it passes them all. Runs where the checks run (DuckDB or
    Spark), so the rows never leave the engine."""
    con = _engine(engine).check_session(table, data, drop=(PARTITION_COLUMN,))
    try:
        return flag_session_rows(con, table, rules)
    finally:
        con.close()


def flag_session_rows(con: SqlSession, table: str, rules: list[Rule]) -> nw.LazyFrame:
    """:func:`flag_rows` over ``main.<table>`` of an open check session; the lookups the rules need are registered
    first. The frame stays valid after the session closes."""
    row_rules = [r for r in rules if r.predicate]
    register_lookups(con, table, row_rules)
    cases = " ".join(f"WHEN coalesce(({r.predicate}), false) THEN '{_sql_text(r.rule_id)}'" for r in row_rules)
    reason = f"CASE {cases} END" if cases else "CAST(NULL AS VARCHAR)"
    return con.frame(f'SELECT *, {reason} AS {REJECT_REASON} FROM main."{table}"')


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def table_contract(table: str, rule_ids: list[str] | None = None, checks_dir: Path | None = None) -> dict[str, Any]:
    """The generated contract of ``table``, narrowed to ``rule_ids``; unknown ids raise QualityRunError."""
    contract = load_contract(table, checks_dir)
    if rule_ids is not None:
        unknown = sorted(set(rule_ids) - {r.rule_id for r in contract_rules(contract, table)})
        if unknown:
            raise QualityRunError(f"{table}: unknown rule ids {unknown}")
    return select_checks(contract, rule_ids)


def run_checks(
    table: str,
    delta_path: LakePath | str,
    *,
    batch_id: str | None = None,
    rule_ids: list[str] | None = None,
    checks_dir: Path | None = None,
    by_institution: bool = True,
    engine: Engine | None = None,
) -> list[CheckResult]:
    """Run DWD table ``table``'s generated checks over the Delta table at ``delta_path`` (one result per rule), on
    ``engine`` (default: the engine ``MEDLAKE_ENGINE`` names): DuckDB over a delta-rs read, or Spark reading the
    table itself."""
    contract = table_contract(table, rule_ids, checks_dir)
    return run_contract(table, delta_path, contract, batch_id=batch_id, by_institution=by_institution, engine=engine)


def _result_rows(results: list[CheckResult], checked_at: datetime) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        base = asdict(r)
        base.pop("by_institution")
        spread = r.by_institution.items() if r.by_institution else [(None, r.failed_rows)]
        for institution, count in spread:
            rows.append({**base, "institution": institution, "failed_rows": int(count),
                         "rule_failed_rows": r.failed_rows, "checked_at": checked_at})
    return rows


_RESULT_SCHEMA = pa.schema([
    ("rule_id", pa.string()), ("table", pa.string()), ("column", pa.string()), ("institution", pa.string()),
    ("batch_id", pa.string()), ("check_type", pa.string()), ("category", pa.string()),
    ("subcategory", pa.string()), ("severity", pa.string()), ("outcome", pa.string()),
    ("failed_rows", pa.int64()), ("rule_failed_rows", pa.int64()), ("rows_tested", pa.int64()),
    ("standard_version", pa.string()), ("message", pa.string()), ("checked_at", pa.timestamp("us", tz="UTC")),
])


def append_results(results: list[CheckResult], settings: Settings) -> int:
    """Append results to ``lake/quality/check_results``: one row per rule and institution with failures
    (one row with institution NULL when none or not counted). Returns the rows written."""
    if not results:
        return 0
    from deltalake import write_deltalake

    rows = _result_rows(results, datetime.now(UTC))
    table = pa.Table.from_pylist(rows, schema=_RESULT_SCHEMA)
    path = settings.table_path(*RESULTS_TABLE)
    if not is_remote(path):  # an object store has no folders to create; delta-rs writes the keys
        path.parent.mkdir(parents=True, exist_ok=True)
    write_deltalake(str(path), table, mode="append")
    return table.num_rows
