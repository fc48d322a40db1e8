"""The generated checks give the same results on Spark (soda-sparkdf, Spark SQL) as on DuckDB, per rule."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from deltalake import write_deltalake

from medlake.config import Settings
from medlake.engine import get_engine
from medlake.engine.spark_sql import spark_sql
from medlake.quality import run_checks
from medlake.sources import SOURCES
from medlake.standards.contracts import load_contract
from medlake.synth.dwd import synthetic_dwd

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SODA_CORE_TELEMETRY_ENABLED", "false")
    monkeypatch.setenv("MEDLAKE_HOME", str(Settings(home=tmp_path / "home").home))


def _row(i: int) -> pl.Expr:
    return pl.int_range(pl.len()) == i


def _broken(table: str) -> pl.DataFrame:
    """A synthetic DWD table with a few invalid but well-typed values, so that rules fail on some rows."""
    frame = synthetic_dwd(table, 60)
    edits: dict[str, pl.Expr] = {}
    if "id_number" in frame.columns:  # bad check digit; impossible birth date; unknown province
        edits["id_number"] = (pl.when(_row(0)).then(pl.lit("110105194912310021"))
                              .when(_row(1)).then(pl.lit("110105194913310027"))
                              .when(_row(2)).then(pl.lit("990105194912310021"))
                              .otherwise(pl.col("id_number")))
    if "fund_paid" in frame.columns:
        edits["fund_paid"] = pl.when(_row(3)).then(pl.col("total_amount") + 1).otherwise(pl.col("fund_paid"))
    if "end_date" in frame.columns:
        edits["end_date"] = pl.when(_row(4)).then(pl.lit(date(2001, 1, 1))).otherwise(pl.col("end_date"))
    text = [c for c, t in frame.schema.items() if t == pl.String and c not in ("institution_code", "_batch_id")]
    if text:  # a placeholder and untrimmed text in the first free-text column
        edits[text[-1]] = (pl.when(_row(5)).then(pl.lit("无")).when(_row(6)).then(pl.lit(" x "))
                           .otherwise(pl.col(text[-1])))
    for column in _empty_means_missing(table)[:2]:  # '' counts as missing (the contracts' missing_values)
        if column in frame.columns and column not in edits:
            edits[column] = pl.when(_row(7)).then(pl.lit("")).otherwise(pl.col(column))
    return frame.with_columns(**edits)


def _empty_means_missing(table: str) -> list[str]:
    contract = load_contract(table)
    return [str(c["name"]) for c in contract.get("columns", [])
            if c.get("data_type", "").upper() == "VARCHAR" and c["name"] != "institution_code"
            and any("" in (body or {}).get("missing_values", []) for check in c.get("checks", [])
                    for body in (check.values() if isinstance(check, dict) else []) if isinstance(body, dict))]


def _outcomes(results: list) -> dict[str, tuple[str, int, dict[str, int]]]:
    return {r.rule_id: (r.outcome, r.failed_rows, dict(r.by_institution)) for r in results}


def test_duckdb_only_sql_is_rewritten_for_spark() -> None:
    sql = spark_sql("""regexp_matches("a", '^x') AND try_strptime(substr("a", 7, 8), '%Y%m%d') IS NULL """
                    """AND date_diff('day', "b", "c") > 3 AND "d" IN (SELECT 1 FROM "main"."t")""")
    assert sql == ("`a` RLIKE '^x' AND TRY_TO_TIMESTAMP(SUBSTRING(`a`, 7, 8), 'yyyyMMdd') IS NULL "
                   "AND DATEDIFF(CAST(`c` AS DATE), CAST(`b` AS DATE)) > 3 AND `d` IN (SELECT 1 FROM `t`)")


@pytest.mark.parametrize("table", [s.name for s in SOURCES])
def test_spark_checks_equal_duckdb_checks(tmp_path: Path, table: str) -> None:
    path = tmp_path / table
    write_deltalake(str(path), _broken(table).to_arrow(), mode="overwrite")
    on_duckdb = _outcomes(run_checks(table, path, engine=get_engine("polars")))
    on_spark = _outcomes(run_checks(table, path, engine=get_engine("spark")))
    assert sorted(on_spark) == sorted(on_duckdb)
    assert "error" not in {outcome for outcome, _, _ in on_spark.values()}, on_spark
    assert any(failed for _, failed, _ in on_duckdb.values())  # the comparison covers failing rules
    assert on_spark == on_duckdb
    empty = _empty_means_missing(table)[:1]
    if empty:  # the '' written into row 7 is counted as missing on both engines
        missing = {rule: failed for rule, (_, failed, _) in on_spark.items()
                   if rule.startswith(f"{table}.{empty[0]}.") and rule.endswith("missing")}
        assert missing and all(failed >= 1 for failed in missing.values()), (empty, sorted(on_spark))
