"""Workflow YAML: validation errors with file and line, the asset factory, and the scenario templates."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest
from dagster import AssetKey, ResourceDefinition, materialize
from typer.testing import CliRunner

from medlake.config import Settings
from medlake.engine.polars_engine import PolarsEngine
from medlake.identifiers import check_char
from medlake.sources import SOURCES
from medlake.transcode import FrameMappings
from medlake.workflows import (
    SCENARIOS,
    TEMPLATES_DIR,
    WorkflowError,
    build_workflow_assets,
    load_workflow,
    load_workflows,
    operator_class,
)
from medlake.workflows.rejects import quarantine_path

H1 = "H33010200001"
VALID = """\
name: drugs_national
scenario: hospital
source: dwd/order_item
steps:
  - operator: transcode
    column: local_item_code
    category: drug
    name_column: item_name
    on_unmapped: reject
  - operator: mask
    salt_env: TEST_WORKFLOW_SALT
    columns:
      order_id: hash
target: governed/drugs_national
group: hospital
owner: team:pharmacy
"""


def _write(tmp_path: Path, text: str, name: str = "wf.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- validation ------------------------------------------------------------------------------------------------

def test_valid_workflow_loads_with_lines(tmp_path: Path) -> None:
    spec = load_workflow(_write(tmp_path, VALID))
    assert [s.operator for s in spec.steps] == ["transcode", "mask"]
    assert spec.steps[1].line == 10
    assert spec.steps[0].config["column"] == "local_item_code"
    assert spec.target_parts == ("governed", "drugs_national")


@pytest.mark.parametrize(
    ("old", "new", "line", "expected"),
    [
        ("scenario: hospital", "scenario: hospitals", 2, r"scenario: Input should be 'hospital'"),
        ("source: dwd/order_item", "source: order_item", 3, r"source: got 'order_item'; expected a lake table"),
        ("  - operator: mask", "  - operator: mask2", 10, r"steps\[1\]\.operator: unknown operator 'mask2'"),
        ("name: drugs_national\n", "", 1, r"missing key 'name'; expected a lower-case identifier"),
        ("group: hospital", "grup: hospital", 15, r"unknown key 'grup'; expected one of name, scenario"),
        ("      order_id: hash", "      order_id: blur", 13, r"steps\[1\]: mask: mask: columns.order_id: method"),
        ("    category: drug", "    category: drugs", 7, r"steps\[0\]: transcode: .*category 'drugs'"),
        ("steps:", "steps: []\nxsteps:", 4, r"steps: got \[\]; expected a list of steps"),
        ("owner: team:pharmacy", "owner: pharmacy", 16, r"owner: got 'pharmacy'; expected an e-mail"),
        ("target: governed/drugs_national", "target: [governed", 15, r"not valid YAML"),
        ("  - operator: mask", "  - operator: mask\n    operator: quality", 11, r"duplicate key 'operator'"),
    ],
)
def test_malformed_yaml_names_file_line_and_expectation(
    tmp_path: Path, old: str, new: str, line: int, expected: str
) -> None:
    assert old in VALID
    path = _write(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(WorkflowError, match=expected) as caught:
        load_workflow(path)
    assert str(caught.value).startswith(f"{path}:{line}:"), str(caught.value)
    assert caught.value.line == line


def test_every_registered_operator_is_built_and_unknown_kinds_are_refused() -> None:
    from medlake.workflows.registry import OPERATORS

    for kind in OPERATORS:
        cls = operator_class(kind)
        assert cls.kind == kind and callable(cls.run)
    with pytest.raises(WorkflowError, match=r"unknown operator 'blur'; expected one of transcode, mask"):
        operator_class("blur")


def test_duplicate_targets_across_files(tmp_path: Path) -> None:
    _write(tmp_path, VALID, "a.yaml")
    _write(tmp_path, VALID.replace("name: drugs_national", "name: other"), "b.yaml")
    with pytest.raises(WorkflowError, match=r"b.yaml:14: target: target 'governed/drugs_national' is also used"):
        load_workflows(tmp_path)


# -- lake fixtures ---------------------------------------------------------------------------------------------

_LOCAL = {"drug": [("D001", "阿莫西林胶囊", "XJ01CAD006A002390113642"), ("D002", "阿司匹林肠溶片", "XB01ACA056A001")],
          "service": [("S001", "血常规", "250101015")],
          "diagnosis": [("L-J06", "急性上呼吸道感染", "J06.900"), ("L-I10", "原发性高血压", "I10.x00")]}


def _mappings() -> FrameMappings:
    tables = {
        (H1, cat): pl.DataFrame(rows, schema=["local_code", "local_name", "national_code"], orient="row")
        .with_columns(pl.col("local_name").alias("national_name"))
        for cat, rows in _LOCAL.items()
    }
    return FrameMappings(tables)


def _id_number(i: int) -> str:
    first17 = f"330102{date(1980, 1, 1 + i):%Y%m%d}{i:03d}"
    return first17 + check_char(first17)


def _value(table: str, column: str, dtype: str, i: int) -> Any:
    special: dict[str, Any] = {
        "id_number": _id_number(i), "birth_date": date(1980, 1, 1 + i), "sex_code": "1" if i % 2 else "2",
        "name": "张三" if i % 2 else "欧阳娜娜", "psn_name": "李四",
        "phone": "13812345678", "region_code": "330102",
        "item_category": "drug" if i % 3 else "service",
        "local_item_code": ["S001", "D001", "D002", "D999"][i % 4] if i % 3 else "S001",
        "item_name": "阿莫西林胶囊", "diag_code": ["L-J06", "L-I10", "L-XXX"][i % 3], "diag_name": "急性上呼吸道感染",
        "encounter_type": "outpatient", "medins_code": H1, "setl_type": "outpatient", "setl_status": "1",
        "total_amount": Decimal("100.0000"), "fund_paid": Decimal("60.0000"), "self_paid": Decimal("40.0000"),
    }
    if column in special:
        return special[column]
    text = "".join(ch for ch in column if ch.isalnum())[:4]
    return {"string": f"{text}{i}", "int": i + 1, "decimal": Decimal("12.5000"),
            "date": date(2024, 1, 1 + i % 28), "datetime": datetime(2024, 1, 1 + i % 28, 8, 30)}[dtype]


def _seed_dwd(settings: Settings, rows: int = 12) -> None:
    dtypes = {"string": pl.Utf8, "int": pl.Int64, "decimal": pl.Decimal(18, 4), "date": pl.Date,
              "datetime": pl.Datetime("us")}
    for spec in SOURCES:
        data: dict[str, Any] = {"institution_code": [H1] * rows}
        schema: dict[str, Any] = {"institution_code": pl.Utf8}
        for col in spec.columns:
            data[col.name] = [_value(spec.name, col.name, col.dtype, i) for i in range(rows)]
            schema[col.name] = dtypes[col.dtype]
        data["_batch_id"] = ["b1"] * rows
        data["_loaded_at"] = [datetime.now()] * rows
        schema.update(_batch_id=pl.Utf8, _loaded_at=pl.Datetime("us"))
        frame = pl.DataFrame(data, schema=schema)
        frame.write_delta(str(settings.table_path("dwd", spec.name)), mode="overwrite")


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.setattr("medlake.transcode.operator.RegistryMappings", lambda version=None: _mappings())
    settings = Settings(home=tmp_path / "home")
    _seed_dwd(settings)
    secrets = {"MEDLAKE_MASK_SALT": "test-salt", "TEST_WORKFLOW_SALT": "test-salt"}  # what the lake resource binds
    return SimpleNamespace(engine=PolarsEngine(), settings=settings, secrets=secrets)


def _materialize(spec: Any, lake: SimpleNamespace) -> Any:
    result = materialize(
        [build_workflow_assets(spec)], resources={"lake": ResourceDefinition.hardcoded_resource(lake)}
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    return event.materialization.metadata


# -- the factory -----------------------------------------------------------------------------------------------

def test_asset_runs_steps_records_metadata_and_quarantines(tmp_path: Path, lake: SimpleNamespace) -> None:
    spec = load_workflow(_write(tmp_path, VALID))
    asset_def = build_workflow_assets(spec)
    assert asset_def.key == AssetKey(["governed", "drugs_national"])
    assert AssetKey(["dwd", "order_item"]) in asset_def.dependency_keys
    meta = _materialize(spec, lake)
    # 12 lines, all looked up as drugs: 6 service codes (S001) and 2 × D999 are unmapped → 8 rejected
    assert meta["step1_transcode/rows_in"].value == 12
    assert meta["step1_transcode/rows_rejected"].value == 8
    assert meta["step1_transcode/rows_out"].value == 4
    assert meta["step2_mask/rows_in"].value == meta["step2_mask/rows_out"].value == 4
    assert meta["step1_transcode/status"].value == "warn"
    assert meta["dagster/row_count"].value == 4
    out = pl.read_delta(str(lake.settings.table_path("governed", "drugs_national")))
    assert out["national_code"].null_count() == 0 and out["order_id"].str.len_chars().to_list() == [64] * 4
    quarantined = pl.read_delta(str(quarantine_path(lake.settings)))
    assert quarantined.height == 8
    assert set(quarantined["reason"]) == {"unmapped drug code"}
    assert quarantined["step"].unique().to_list() == ["transcode"]
    assert '"local_item_code"' in quarantined["record"][0]


# -- templates -------------------------------------------------------------------------------------------------

def test_every_scenario_has_templates_that_load() -> None:
    specs = load_workflows(TEMPLATES_DIR)
    assert {s.scenario for s in specs} == set(SCENARIOS)
    for spec in specs:
        assert Path(spec.file).parent.name == spec.scenario


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(TEMPLATES_DIR.glob("*/*.yaml")), ids=lambda p: p.stem)
def test_every_template_materializes(path: Path, lake: SimpleNamespace) -> None:
    spec = load_workflow(path)
    meta = _materialize(spec, lake)
    assert meta["dagster/row_count"].value > 0
    assert all(f"step{i + 1}_{s.operator}/rows_in" in meta for i, s in enumerate(spec.steps))
    assert lake.engine.row_count(str(lake.settings.table_path(*spec.target_parts))) == meta["dagster/row_count"].value


def test_init_command_lays_down_templates(tmp_path: Path) -> None:
    import typer

    from medlake.workflows.cli import init_command

    app = typer.Typer()
    app.command("init")(init_command)
    app.command("noop")(lambda: None)
    target = tmp_path / "workflows"
    result = CliRunner().invoke(app, ["init", "--scenario", "cdc", "--dir", str(target)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in target.iterdir()) == ["cdc_case_report_patient.yaml", "cdc_diagnosis_icd10.yaml"]
    assert [s.scenario for s in load_workflows(target)] == ["cdc", "cdc"]
    bad = CliRunner().invoke(app, ["init", "--scenario", "hospitals", "--dir", str(target)])
    assert bad.exit_code == 2 and "unknown scenario 'hospitals'" in bad.output


def test_all_templates_fit_in_one_definitions() -> None:
    from dagster import Definitions

    specs = load_workflows(TEMPLATES_DIR, check_operators=False)
    defs = Definitions(
        assets=[build_workflow_assets(s) for s in specs],
        resources={"lake": ResourceDefinition.hardcoded_resource(SimpleNamespace())},
    )
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} >= {s.target for s in specs}
