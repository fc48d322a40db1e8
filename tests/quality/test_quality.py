"""Quality runner, results table, quality operator actions and the Dagster asset checks."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest
from deltalake import write_deltalake

from medlake.config import Settings
from medlake.engine.polars_engine import PolarsEngine
from medlake.operators.base import Operator, OperatorContext, StepStatus
from medlake.quality import QualityGateError, QualityOperator, append_results, run_checks
from medlake.standards import Registry, generate_checks
from medlake.synth.dwd import synthetic_dwd


@pytest.fixture(autouse=True)
def _no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SODA_CORE_TELEMETRY_ENABLED", "false")


@pytest.fixture(scope="session")
def checks_2023(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("checks-2023.1")
    generate_checks(Registry.load("2023.1"), out)
    return out


@pytest.fixture(scope="session")
def checks_2024(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("checks-2024.1")
    generate_checks(Registry.load("2024.1"), out)
    return out


def _delta(frame: pl.DataFrame, path: Path) -> Path:
    write_deltalake(str(path), frame.to_arrow(), mode="overwrite")
    return path


def _by_rule(results: list) -> dict:
    return {r.rule_id: r for r in results}


def test_value_domain_change_in_new_release_fails_a_previously_valid_row(
    tmp_path: Path, checks_2023: Path, checks_2024: Path
) -> None:
    patients = synthetic_dwd("patient", 20).with_columns(
        region_code=pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("330103")).otherwise(pl.col("region_code")))
    path = _delta(patients, tmp_path / "patient")
    rule = "patient.region_code.value_domain"
    old = _by_rule(run_checks("patient", path, checks_dir=checks_2023, rule_ids=[rule]))[rule]
    new = _by_rule(run_checks("patient", path, checks_dir=checks_2024, rule_ids=[rule]))[rule]
    assert (old.outcome, old.failed_rows) == ("pass", 0)
    assert (new.outcome, new.failed_rows) == ("warn", 3)
    assert sum(new.by_institution.values()) == 3


def test_broken_rows_fail_their_rules_and_valid_data_passes(tmp_path: Path, checks_2024: Path) -> None:
    clean = run_checks("settlement", _delta(synthetic_dwd("settlement", 50), tmp_path / "ok"),
                       checks_dir=checks_2024)
    assert [r.rule_id for r in clean if r.outcome != "pass"] == []
    broken = synthetic_dwd("settlement", 50).with_columns(
        fund_paid=pl.when(pl.int_range(pl.len()) == 0).then(pl.col("total_amount") + 1)
        .otherwise(pl.col("fund_paid")),
        end_date=pl.when(pl.int_range(pl.len()) == 1).then(pl.lit(date(2001, 1, 1))).otherwise(pl.col("end_date")),
        id_number=pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("110105194912310021"))
        .otherwise(pl.col("id_number")),
        setl_status=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("7")).otherwise(pl.col("setl_status")),
    )
    results = _by_rule(run_checks("settlement", _delta(broken, tmp_path / "bad"), checks_dir=checks_2024))
    assert results["settlement.fund_paid.amount_not_exceed"].outcome == "fail"
    assert results["settlement.fund_paid.amount_not_exceed"].failed_rows == 1
    assert results["settlement.end_date.temporal_order"].failed_rows == 1
    assert results["settlement.id_number.id_check_digit"].failed_rows == 1
    assert results["settlement.setl_status.value_domain"].failed_rows == 1
    assert results["settlement.setl_status.value_domain"].by_institution == {"YB330100": 1}
    assert results["settlement.setl_id.key_missing"].outcome == "pass"


def test_results_are_appended_to_the_quality_table(tmp_path: Path, checks_2024: Path) -> None:
    frame = synthetic_dwd("encounter", 30).with_columns(
        discharge_time=pl.when(pl.int_range(pl.len()) < 2).then(pl.lit(datetime(2000, 6, 1)))
        .otherwise(pl.col("discharge_time")))
    results = run_checks("encounter", _delta(frame, tmp_path / "enc"), checks_dir=checks_2024, batch_id=None)
    conf = Settings(home=tmp_path / "home")
    written = append_results(results, conf)
    table = pl.read_delta(str(conf.table_path("quality", "check_results")))
    assert table.height == written >= len(results)
    row = table.filter(pl.col("rule_id") == "encounter.discharge_time.temporal_order")
    assert row["failed_rows"].sum() == 2 and set(row["category"]) == {"plausibility"}
    assert {"rule_id", "table", "column", "institution", "batch_id", "failed_rows", "category",
            "severity"} <= set(table.columns)


def _context(tmp_path: Path) -> OperatorContext:
    return OperatorContext(engine=PolarsEngine(), settings=Settings(home=tmp_path), table="dwd.encounter")


def _bad_encounters() -> pl.DataFrame:
    return synthetic_dwd("encounter", 40).with_columns(
        encounter_type=pl.when(pl.int_range(pl.len()) < 4).then(pl.lit("home_visit"))
        .otherwise(pl.col("encounter_type")))


def test_operator_warn_keeps_rows_and_warns(tmp_path: Path, checks_2024: Path) -> None:
    op = QualityOperator.from_config({"table": "encounter", "actions": {"error": "warn"},
                                      "checks_dir": str(checks_2024)})
    assert isinstance(op, Operator) and op.kind == "quality"
    result = op.run(nw.from_native(_bad_encounters().lazy()), _context(tmp_path))
    assert result.status == StepStatus.WARN
    assert (result.rows_out, result.rows_rejected, result.rejected) == (40, 0, None)
    assert "encounter.encounter_type.value_domain" in result.metrics["warned_rules"]


def test_operator_quarantine_rejects_failing_rows_with_rule_id(tmp_path: Path, checks_2024: Path) -> None:
    rule = "encounter.encounter_type.value_domain"
    op = QualityOperator.from_config({"table": "encounter", "rules": [rule], "actions": {rule: "quarantine"},
                                      "checks_dir": str(checks_2024), "record": False})
    result = op.run(nw.from_native(_bad_encounters().lazy()), _context(tmp_path))
    rejected = nw.to_native(result.rejected).collect()
    kept = nw.to_native(result.frame).collect()
    assert (result.rows_rejected, kept.height) == (4, 36)
    assert set(rejected["_reject_reason"]) == {rule}
    assert set(rejected["encounter_type"]) == {"home_visit"} and "home_visit" not in set(kept["encounter_type"])


def test_operator_fail_raises_naming_the_rule(tmp_path: Path, checks_2024: Path) -> None:
    op = QualityOperator.from_config({"table": "encounter", "actions": {"encounter.encounter_type.value_domain":
                                                                      "fail"}, "checks_dir": str(checks_2024)})
    with pytest.raises(QualityGateError, match=r"encounter\.encounter_type\.value_domain \(4 rows"):
        op.run(nw.from_native(_bad_encounters().lazy()), _context(tmp_path))


def test_dagster_asset_checks_run_and_block(tmp_path: Path, checks_2024: Path) -> None:
    from dagster import AssetKey, asset, materialize

    from checks import build_asset_checks
    from medlake.resources import LakeResource

    key = lambda table: AssetKey(["dwd", table])  # noqa: E731
    definitions = {c.node_def.name: c for c in build_asset_checks(key, checks_2024)}
    assert set(definitions) >= {"quality_patient", "quality_settlement"}
    patient_checks = definitions["quality_patient"]
    specs = list(patient_checks.check_specs)
    assert any(s.blocking for s in specs) and not all(s.blocking for s in specs)

    defect = {"sex_code": pl.lit("5")}  # a non-blocking (warn) rule fails first, then a blocking one

    @asset(key=key("patient"))
    def patient() -> None:
        frame = synthetic_dwd("patient", 20)
        frame = frame.with_columns(**{c: pl.when(pl.int_range(pl.len()) == 0).then(v).otherwise(pl.col(c))
                                      for c, v in defect.items()})
        write_deltalake(str(tmp_path / "lake" / "dwd" / "patient"), frame.to_arrow(), mode="overwrite")

    @asset(key=AssetKey(["theme", "patients"]), deps=[patient])
    def patients_mart() -> None:
        pass

    lake = LakeResource.from_settings(Settings(home=tmp_path))  # the checks find the lake through the resource
    result = materialize([patient, patients_mart, patient_checks], resources={"lake": lake}, raise_on_error=False)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert len(evaluations) == len(specs)
    assert not evaluations["patient__sex_code__value_domain"].passed
    assert evaluations["patient__patient_id__key_missing"].passed
    assert {e.asset_key for e in result.get_asset_materialization_events()} == {key("patient"),
                                                                               AssetKey(["theme", "patients"])}
    stored = pl.read_delta(str(tmp_path / "lake" / "quality" / "check_results"))
    assert stored.filter(pl.col("rule_id") == "patient.sex_code.value_domain")["failed_rows"].sum() == 1

    # row 0 repeats row 1's business key: a fatal duplicate, so the mart downstream must not run
    defect.update(institution_code=pl.col("institution_code").shift(-1), patient_id=pl.col("patient_id").shift(-1))
    blocked = materialize([patient, patients_mart, patient_checks], resources={"lake": lake}, raise_on_error=False)
    evaluations = {e.check_name: e for e in blocked.get_asset_check_evaluations()}
    assert not evaluations["patient__key_duplicate"].passed
    assert {e.asset_key for e in blocked.get_asset_materialization_events()} == {key("patient")}


def test_reference_rules_catch_the_generator_defect_forms(tmp_path: Path, checks_2024: Path) -> None:
    orders = synthetic_dwd("order_item", 60)
    assert [r.rule_id for r in run_checks("order_item", _delta(orders, tmp_path / "o1"), checks_dir=checks_2024)
            if r.outcome != "pass"] == []
    unknown = orders.with_columns(local_item_code=pl.when(pl.int_range(pl.len()) < 2)
                                  .then(pl.lit("ZZ") + pl.col("local_item_code")).otherwise(pl.col("local_item_code")))
    mapped = _by_rule(run_checks("order_item", _delta(unknown, tmp_path / "o2"), checks_dir=checks_2024))
    assert (mapped["order_item.local_item_code.code_mapped"].outcome,
            mapped["order_item.local_item_code.code_mapped"].failed_rows) == ("warn", 2)
    labs = synthetic_dwd("lab_result", 40).with_columns(
        result_value=pl.when(pl.int_range(pl.len()) == 0).then(-pl.col("result_value")).otherwise(pl.col("result_value")),
        test_code=pl.when(pl.int_range(pl.len()) == 1).then(pl.col("test_code") + "-X").otherwise(pl.col("test_code")))
    lab = _by_rule(run_checks("lab_result", _delta(labs, tmp_path / "l"), checks_dir=checks_2024))
    assert lab["lab_result.result_value.sign_agree"].failed_rows == 1
    assert lab["lab_result.test_code.value_domain"].failed_rows == 1
    settlements = synthetic_dwd("settlement", 30)
    settlements = pl.concat([settlements, settlements.head(2)]).with_columns(
        medins_code=pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("H99999999999")).otherwise(pl.col("medins_code")))
    setl = _by_rule(run_checks("settlement", _delta(settlements, tmp_path / "s"), checks_dir=checks_2024))
    assert (setl["settlement.medins_code.code_region_known"].outcome,
            setl["settlement.medins_code.code_region_known"].failed_rows) == ("fail", 1)
    assert (setl["settlement.key_duplicate"].failed_rows, setl["settlement.key_duplicate"].by_institution) == \
        (4, {"YB330100": 4})


def test_outpatient_encounters_without_discharge_time_pass(tmp_path: Path, checks_2024: Path) -> None:
    frame = synthetic_dwd("encounter", 30).with_columns(discharge_time=pl.lit(None, pl.Datetime("us")))
    results = run_checks("encounter", _delta(frame, tmp_path / "enc"), checks_dir=checks_2024)
    assert [r.rule_id for r in results if r.outcome != "pass"] == []


def test_quarantine_uses_the_mapping_lookup(tmp_path: Path, checks_2024: Path) -> None:
    rule = "order_item.local_item_code.code_mapped"
    orders = synthetic_dwd("order_item", 30).with_columns(
        local_item_code=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("NOPE01")).otherwise(pl.col("local_item_code")))
    op = QualityOperator.from_config({"table": "order_item", "rules": [rule], "actions": {rule: "quarantine"},
                                      "checks_dir": str(checks_2024), "record": False})
    ctx = OperatorContext(engine=PolarsEngine(), settings=Settings(home=tmp_path), table="dwd.order_item")
    result = op.run(nw.from_native(orders.lazy()), ctx)
    rejected = nw.to_native(result.rejected).collect()
    assert rejected["local_item_code"].to_list() == ["NOPE01"] and set(rejected["_reject_reason"]) == {rule}
