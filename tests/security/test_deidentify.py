"""Re-identification risk (k-anonymity, l-diversity) and the deidentify operator (GB/T 37964-2019)."""

from __future__ import annotations

from pathlib import Path

import narwhals as nw
import numpy as np
import polars as pl
import pytest

from medlake.config import Settings
from medlake.engine import get_engine
from medlake.identifiers import check_char
from medlake.masking import MaskOperator
from medlake.operators.base import OperatorContext, StepStatus
from medlake.security.deidentify import DeidentifyOperator, measure_risk, risk_history
from medlake.security.errors import PolicyError

REGIONS = ["330102", "330105", "330106", "330203", "330204", "330302", "330402", "330502", "330602", "330702"]


def _patients(n: int = 1500, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice(REGIONS, n)
    year = rng.integers(1930, 2020, n)
    month, day = rng.integers(1, 13, n), rng.integers(1, 29, n)
    seq = rng.integers(0, 1000, n)
    first17 = [f"{r}{y}{m:02d}{d:02d}{s:03d}" for r, y, m, d, s in zip(region, year, month, day, seq, strict=True)]
    return pl.DataFrame({
        "patient_id": [f"P{i:05d}" for i in range(n)],
        "id_number": [f + check_char(f) for f in first17],
        "sex_code": ["1" if s % 2 else "2" for s in seq],
        "birth_date": [f"{y}-{m:02d}-{d:02d}" for y, m, d in zip(year, month, day, strict=True)],
        "region_code": list(region),
        "diag_code": rng.choice(["I10", "E11.9", "J18.9", "K29.7"], n),
    }).with_columns(pl.col("birth_date").str.to_date())


def test_measure_risk_counts_classes_and_uniques() -> None:
    frame = pl.DataFrame({"a": ["x", "x", "y", "z", "z", "z"], "s": ["1", "2", "1", "1", "1", "2"]})
    report = measure_risk(frame, ["a"], ["s"], target_k=2)
    assert (report.records, report.equivalence_classes, report.k, report.unique_records) == (6, 3, 1, 1)
    assert report.records_below == 1 and report.l_diversity == 1 and report.max_risk == 1.0
    with pytest.raises(PolicyError, match="no column"):
        measure_risk(frame, ["b"])


def _research_extract(settings: Settings) -> tuple[object, nw.LazyFrame, OperatorContext]:
    engine = get_engine("polars")
    ctx = OperatorContext(engine=engine, settings=settings, table="dwd.patient", run_id="r1")
    masked = MaskOperator.from_config({"columns": {
        "patient_id": "keep", "id_number": "partial", "birth_date": "generalize", "region_code": "generalize",
    }}).run(nw.from_native(_patients().lazy()), ctx).frame
    return engine, masked, ctx


def test_partial_masking_alone_is_re_identifiable(lake_settings: Settings) -> None:
    _, masked, _ = _research_extract(lake_settings)
    report = measure_risk(masked, ["id_number", "sex_code"], target_k=5)
    assert report.k == 1 and report.unique_share > 0.4  # region + birth year + sex single many people out
    assert report.records_below > 0.9 * report.records


def test_deidentify_reaches_k_with_consistent_columns(lake_settings: Settings) -> None:
    _, masked, ctx = _research_extract(lake_settings)
    operator = DeidentifyOperator.from_config({
        "purpose": "research", "sensitive": ["diag_code"],
        "quasi_identifiers": {"id_number": "id_number", "sex_code": "sex", "birth_date": "year",
                              "region_code": "region"},
    })
    result = operator.run(masked, ctx)
    out = nw.to_native(result.frame.collect())
    assert result.status is StepStatus.OK
    after = measure_risk(out, ["id_number", "sex_code", "birth_date", "region_code"], ["diag_code"])
    assert after.k >= 5 and after.l_diversity is not None and after.l_diversity >= 2
    assert result.metrics["after"]["k"] == after.k and result.metrics["before"]["k"] == 1
    assert result.metrics["suppression_share"] <= 0.05 and result.rows_out == out.height
    # the region code was reduced to the prefecture by the mask step: the ID number keeps no more than that
    assert result.metrics["levels"]["region"] != "county"
    region_of_id = out["id_number"].str.slice(0, 6)
    assert (region_of_id == out["region_code"]).all() or out["region_code"].is_null().all()
    years = out.select(pl.col("id_number").str.slice(6, 4), pl.col("birth_date"))
    assert years.height and all(str(b).startswith(y.rstrip("*")) for y, b in years.iter_rows() if b is not None)


def test_workflow_run_records_the_risk_of_its_extract(lake_settings: Settings, tmp_path: Path) -> None:
    from medlake.workflows.run import run_workflow
    from medlake.workflows.spec import load_workflow

    engine = get_engine("polars")
    engine.overwrite(engine.from_arrow(_patients().to_arrow()), str(lake_settings.table_path("dwd", "patient")))
    path = tmp_path / "research.yaml"
    path.write_text(
        "name: research_test\nscenario: hospital\nsource: dwd/patient\ntarget: research/patient_test\n"
        "steps:\n  - operator: mask\n    columns: {id_number: partial, birth_date: generalize, region_code: generalize,"
        " patient_id: drop}\n  - operator: deidentify\n    purpose: research\n    quasi_identifiers:"
        " {id_number: id_number, sex_code: sex, birth_date: year, region_code: region}\n", encoding="utf-8")
    run = run_workflow(load_workflow(path), engine, lake_settings, run_id="r1")
    step = run.steps[-1]
    assert step.operator == "deidentify" and step.metrics["after"]["k"] >= 5  # in the run's metadata
    [recorded] = risk_history(engine, lake_settings, "research.patient_test")  # and in the catalog
    assert recorded["k"] == step.metrics["after"]["k"] and recorded["records"] == run.write.rows_written
    assert recorded["purpose"] == "research" and recorded["run_id"] == "r1" and recorded["levels"]


def test_deidentify_refuses_a_weaker_k_than_the_purpose() -> None:
    with pytest.raises(PolicyError, match="min_k ≥ 5"):
        DeidentifyOperator.from_config({"purpose": "research", "min_k": 2, "quasi_identifiers": {"a": "sex"}})
    with pytest.raises(PolicyError, match="purpose 'fun'"):
        DeidentifyOperator.from_config({"purpose": "fun", "quasi_identifiers": {"a": "sex"}})
    with pytest.raises(PolicyError, match="role 'zip'"):
        DeidentifyOperator.from_config({"purpose": "research", "quasi_identifiers": {"a": "zip"}})


def test_shipped_workflows_mask_consistently() -> None:
    from medlake.security.deidentify import mask_inconsistencies
    from medlake.workflows.spec import load_workflows

    for folder in (Path("workflows"), Path("medlake/workflows/templates")):
        for spec in load_workflows(folder):
            assert mask_inconsistencies([(s.operator, s.config) for s in spec.steps]) == [], spec.file


def test_partial_id_with_generalised_region_is_inconsistent() -> None:
    from medlake.security.deidentify import mask_inconsistencies

    mask = ("mask", {"columns": {"id_number": "partial", "region_code": "generalize", "birth_date": "drop"}})
    found = mask_inconsistencies([mask])
    assert len(found) == 2 and "region_code (generalize)" in found[0] and "birth_date (drop)" in found[1]
    fixed = ("deidentify", {"purpose": "research", "quasi_identifiers": {"id_number": "id_number"}})
    assert mask_inconsistencies([mask, fixed]) == []


def test_research_extract_keeps_column_lineage_through_deidentify() -> None:
    from medlake.lineage.derivation import workflow_column_lineage
    from medlake.workflows.spec import load_workflow

    spec = load_workflow(Path("workflows/hospital_patient_research.yaml"))
    lineage = workflow_column_lineage(spec, "/lake/dwd/patient", ["patient_id", "name", "id_number", "sex_code",
                                                                   "birth_date", "region_code", "address"])
    assert set(lineage) == {"patient_id", "id_number", "sex_code", "birth_date", "region_code"}
    assert lineage["sex_code"] == [("/lake/dwd/patient", "sex_code", "TRANSFORMATION: deidentify: generalised to "
                                                                    "k-anonymity")]
    assert lineage["id_number"][0][1:] == ("id_number", "TRANSFORMATION: deidentify: generalised to k-anonymity")
    assert lineage["patient_id"][0][2] == "TRANSFORMATION: mask hash"
