"""The security API the data service calls: classification catalog, grants, masking by grade, `medlake classify`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from medlake.config import Settings
from medlake.engine import get_engine
from medlake.security import (
    Category,
    ClassificationCatalog,
    ClassificationError,
    ColumnClass,
    GradePolicy,
    GrantError,
    GrantStore,
    PolicyError,
    mask_by_grade,
)

PATIENTS = pl.DataFrame({
    "patient_id": ["P001", "P002", "P003"],
    "name": ["张伟", "欧阳娜娜", "李秀英"],
    "id_number": ["110101199003074514", "330102198512120024", "440304197701010021"],
    "phone": ["13812345678", "13987654321", "15011112222"],
    "birth_date": pl.Series(["1990-03-07", "1985-12-12", "1977-01-01"]).str.to_date(),
    "region_code": ["110101", "330102", "440304"],
    "sex_code": ["1", "2", "2"],
})


@pytest.fixture
def lake(lake_settings: Settings) -> tuple[object, Settings]:
    engine = get_engine("polars")
    engine.overwrite(engine.from_arrow(PATIENTS.to_arrow()), str(lake_settings.table_path("dwd", "patient")))
    return engine, lake_settings


def test_suggest_classifies_pii_and_keeps_steward_edits(lake: tuple[object, Settings]) -> None:
    engine, settings = lake
    catalog = ClassificationCatalog(engine, settings)  # type: ignore[arg-type]
    written = catalog.suggest_all(["dwd.patient"])
    classes = catalog.for_table("dwd.patient")
    assert {c.column for c in written} == set(PATIENTS.columns)
    assert classes["id_number"].pii_type == "id_number" and classes["id_number"].grade == 4
    assert classes["name"].pii_type == "person_name"
    assert classes["phone"].pii_type == "mobile"
    assert classes["sex_code"].pii_type is None and classes["sex_code"].category is Category.PERSONAL_ATTRIBUTES

    edited = catalog.set("dwd.patient", "sex_code", category="个人属性数据", grade=2, by="steward.wang")
    assert edited.source == "steward" and edited.category is Category.PERSONAL_ATTRIBUTES
    again = catalog.suggest_all(["dwd.patient"])
    assert again == []  # nothing changed: detected classes equal, the steward's class kept
    current = catalog.for_table("dwd.patient")["sex_code"]
    assert (current.grade, current.source, current.updated_by) == (2, "steward", "steward.wang")
    assert [c.source for c in catalog.history("dwd.patient", "sex_code")] == ["detected", "steward"]


def test_steward_edit_is_validated(lake: tuple[object, Settings]) -> None:
    engine, settings = lake
    catalog = ClassificationCatalog(engine, settings)  # type: ignore[arg-type]
    with pytest.raises(ClassificationError, match="no column 'nmae'"):
        catalog.set("dwd.patient", "nmae", category="personal attributes", grade=4, by="s")
    with pytest.raises(ClassificationError, match="grade 6"):
        catalog.set("dwd.patient", "name", category="personal attributes", grade=6, by="s")
    with pytest.raises(ClassificationError, match="unknown category"):
        catalog.set("dwd.patient", "name", category="secret", grade=4, by="s")


def test_grant_lifecycle_is_recorded(lake: tuple[object, Settings]) -> None:
    engine, settings = lake
    store = GrantStore(engine, settings)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    gid = store.request("ana", "dwd.patient", 4, "cohort study #12", now + timedelta(days=7))
    assert store.active("ana", "dwd.patient") == []  # requested is not active
    store.approve(gid, "steward.wang")
    [grant] = store.active("ana", "dwd.patient")
    assert grant.grade == 4 and grant.decided_by == "steward.wang"
    assert store.active("ana", "dwd.patient", at=now + timedelta(days=8)) == []  # expired by itself
    with pytest.raises(GrantError, match="already approved"):
        store.reject(gid, "steward.li", "too late")
    other = store.request("ana", "dwd.settlement", 3, "audit", now + timedelta(days=1))
    with pytest.raises(GrantError, match="cannot approve their own"):
        store.approve(other, "ana")
    store.reject(other, "steward.li", "no ethics approval")
    assert store.get(other).status == "rejected" and store.get(other).reason == "no ethics approval"
    store.revoke(gid, "steward.wang", "study ended")
    assert store.active("ana") == []
    assert [e["event"] for e in store.events()] == ["requested", "approved", "requested", "rejected", "revoked"]
    with pytest.raises(GrantError, match="not after"):
        store.request("ana", "dwd.patient", 4, "x", now - timedelta(days=1))


def _classes() -> dict[str, ColumnClass]:
    grades = {"patient_id": (3, None), "name": (3, "person_name"), "id_number": (4, "id_number"),
              "phone": (4, "mobile"), "birth_date": (2, None), "region_code": (2, None), "sex_code": (5, None)}
    return {c: ColumnClass("dwd.patient", c, Category.PERSONAL_ATTRIBUTES, g, p) for c, (g, p) in grades.items()}


def test_mask_by_grade_for_roles_and_grants(lake: tuple[object, Settings]) -> None:
    engine, settings = lake
    analyst = mask_by_grade(PATIENTS, _classes(), "analyst", salt="s3cret")
    out = analyst.frame
    assert isinstance(out, pl.DataFrame) and out.columns == PATIENTS.columns
    assert analyst.unmasked == ()
    assert out["id_number"][0] != PATIENTS["id_number"][0] and len(out["id_number"][0]) == 64  # hashed
    assert out["name"].to_list() == ["张*", "欧阳*", "李*"]  # grade 3 → partial: the surname
    assert len(out["patient_id"][0]) == 64  # grade 3 → partial has no format for an id → generalize has none → hash
    assert out["birth_date"].to_list() == [1990, 1985, 1977]  # grade 2 → generalised to year
    assert out["region_code"].to_list() == ["110100", "330100", "440300"]
    assert out["sex_code"].to_list() == [None, None, None]  # grade 5 → suppressed
    assert analyst.methods["id_number"] == "hash" and analyst.methods["sex_code"] == "suppress"

    clinician = mask_by_grade(PATIENTS, _classes(), "clinician", salt="s3cret")
    assert clinician.frame["id_number"].to_list() == PATIENTS["id_number"].to_list()
    assert "sex_code" not in clinician.unmasked and clinician.frame["sex_code"].null_count() == 3

    store = GrantStore(engine, settings)  # type: ignore[arg-type]
    gid = store.request("ana", "dwd.patient", 4, "study", datetime.now(UTC) + timedelta(hours=1))
    store.approve(gid, "steward.wang")
    granted = mask_by_grade(PATIENTS.lazy(), _classes(), "analyst", store.active("ana", "dwd.patient"), "s3cret")
    assert isinstance(granted.frame, pl.LazyFrame)
    assert set(granted.unmasked) == {"patient_id", "name", "id_number", "phone", "birth_date", "region_code"}
    assert granted.grants_used == (gid,)
    expired = mask_by_grade(PATIENTS, _classes(), "analyst", store.active("ana", "dwd.patient"), "s3cret",
                            at=datetime.now(UTC) + timedelta(hours=2))
    assert expired.unmasked == ()


def test_mask_by_grade_refuses_unknown_roles_and_missing_salt() -> None:
    with pytest.raises(PolicyError, match="unknown role 'intern'"):
        mask_by_grade(PATIENTS, _classes(), "intern", salt="s")
    with pytest.raises(PolicyError, match="needs a salt"):
        mask_by_grade(PATIENTS, _classes(), "analyst")
    with pytest.raises(PolicyError, match="grades"):
        GradePolicy.from_mapping({"roles": {r: 1 for r in ("clinician", "analyst", "fund_supervisor", "cdc_officer",
                                                           "data_steward", "admin")}, "grades": {1: "keep"}})


def test_classify_command_prints_json(tmp_path: Path) -> None:
    from medlake.cli import _register, app

    path = tmp_path / "patients.csv"
    PATIENTS.write_csv(path)
    _register()
    result = CliRunner().invoke(app, ["classify", str(path), "--json"])
    assert result.exit_code == 0, result.output
    found = {c["column"]: c for c in json.loads(result.output)}
    assert found["id_number"]["pii_type"] == "id_number" and found["id_number"]["hit_ratio"] == 1.0
    assert found["name"]["category_zh"] == "个人属性数据" and found["name"]["grade"] == 4
    assert found["birth_date"]["pii_type"] is None
    bad = CliRunner().invoke(app, ["classify", str(tmp_path / "missing.csv")])
    assert bad.exit_code == 2 and "no such file" in bad.output


def test_access_commands_request_approve_and_list(lake: tuple[object, Settings]) -> None:
    from medlake.cli import _register, app

    _register()
    runner = CliRunner()
    requested = runner.invoke(app, ["access", "request", "dwd.patient", "--user", "ana", "--grade", "4",
                                    "--purpose", "cohort study", "--days", "7"])
    assert requested.exit_code == 0, requested.output
    grant_id = requested.output.strip()
    approved = runner.invoke(app, ["access", "approve", grant_id, "--steward", "steward.wang"])
    assert approved.exit_code == 0 and "approved: ana on dwd.patient up to grade 4" in approved.output
    twice = runner.invoke(app, ["access", "reject", grant_id, "--steward", "steward.li", "--reason", "no"])
    assert twice.exit_code == 2 and "already approved" in twice.output
    listed = runner.invoke(app, ["access", "list", "--user", "ana", "--active", "--json"])
    [grant] = json.loads(listed.output)
    assert grant["grant_id"] == grant_id and grant["status"] == "approved"
    steward = runner.invoke(app, ["classification", "set", "dwd.patient", "sex_code", "--category", "个人属性数据",
                                  "--grade", "3", "--by", "steward.wang"])
    assert steward.exit_code == 0 and "grade 3" in steward.output
    shown = runner.invoke(app, ["classification", "list", "dwd.patient", "--json"])
    assert [c["source"] for c in json.loads(shown.output)] == ["steward"]
