"""Standards registry: releases, bindings, diff, mapping tables, generated Soda contracts and the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from medlake.errors import ConfigurationError, MedlakeError
from medlake.identifiers import check_char, is_valid_id_number
from medlake.sources import SOURCES
from medlake.standards import (
    CHECK_TYPES,
    Registry,
    StandardNotFoundError,
    derive_rules,
    diff,
    generate_checks,
    read_contract_rules,
)
from medlake.standards.cli import standards_app
from medlake.standards.registry import DATA_DIR, dwd_columns


def test_two_releases_newest_is_default() -> None:
    assert Registry.versions()[:2] == ["2023.1", "2024.1"]
    assert Registry.load().version == Registry.versions()[-1]
    assert Registry.load("2023.1").version == "2023.1"
    with pytest.raises(StandardNotFoundError):
        Registry.load("1999.1")


def test_every_dwd_column_is_bound_to_a_known_element() -> None:
    reg = Registry.load()
    for spec in SOURCES:
        bound = {b.column: b.element_id for b in reg.bindings_for(spec.name)}
        assert list(bound) == dwd_columns(spec.name)
        for element_id in bound.values():
            assert reg.element(element_id).id == element_id
    assert reg.element("DE02.01.040.00").value_domain == "GB/T 2261.1"
    assert reg.value_domain("GB/T 2261.1").codes == {"0": "未知的性别", "1": "男性", "2": "女性", "9": "未说明的性别"}
    with pytest.raises(MedlakeError):
        reg.element("DE00.00.000.00")


def test_diff_reports_domain_and_element_changes_of_the_delta_release() -> None:
    d = diff("2023.1", "2024.1")
    regions = next(c for c in d.domains_changed if c.id == "GB/T 2260")
    assert regions.codes_removed == ["330103", "330104"] and regions.fields["standard"][1] == "GB/T 2260-2024"
    icd = next(c for c in d.domains_changed if c.id == "ICD-10")
    assert icd.codes_added == ["U07.1"] and list(icd.labels_changed) == ["J10.1"]
    status = next(c for c in d.domains_changed if c.id == "MLD.setl_status")
    assert status.codes_added == ["4"]
    assert [c.id for c in d.elements_changed] == ["DE02.01.010.00"]
    assert d.mappings_changed == []
    assert diff("2024.1", "2024.1").is_empty


def test_domain_delta_of_an_extending_release_is_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(DATA_DIR, tmp_path / "data")
    domains = tmp_path / "data" / "2024.1" / "value_domains.yaml"
    domains.write_text(domains.read_text(encoding="utf-8").replace("'330104'", "'339999'"), encoding="utf-8")
    monkeypatch.setenv("MEDLAKE_STANDARDS_DIR", str(tmp_path / "data"))
    with pytest.raises(ConfigurationError, match="cannot remove unknown code '339999'"):
        Registry.load("2024.1")


def test_versioned_mapping_change_shows_in_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(DATA_DIR, tmp_path / "data")
    base = tmp_path / "data" / "2023.1" / "mappings" / "H33010200001" / "drug.csv"
    lines = base.read_text(encoding="utf-8").splitlines(keepends=True)
    unmapped = next(i for i, line in enumerate(lines) if line.rstrip("\n").endswith(",,"))
    local, name = lines[unmapped].split(",")[:2]
    lines[unmapped] = f"{local},{name},XJ01CAD006A002390113642,阿莫西林胶囊\n"
    target = tmp_path / "data" / "2024.1" / "mappings" / "H33010200001" / "drug.csv"
    target.parent.mkdir(parents=True)
    target.write_text("".join(lines), encoding="utf-8")
    monkeypatch.setenv("MEDLAKE_STANDARDS_DIR", str(tmp_path / "data"))
    change = diff("2023.1", "2024.1").mappings_changed
    assert [(c.institution, c.category, c.changed) for c in change] == [("H33010200001", "drug", [local])]


def test_registry_code_lists_hold_every_reference_code() -> None:
    from medlake.standards.reference_sync import reference_drift

    for version in Registry.versions():
        assert reference_drift(Registry.load(version)) == []
    assert len(Registry.load("2023.1").value_domain("GB/T 2260").codes) >= 109
    assert len(Registry.load("2023.1").value_domain("ICD-10").codes) >= 165


def test_sync_reference_is_idempotent(tmp_path: Path) -> None:
    from medlake.standards.reference_sync import sync_reference

    shutil.copytree(DATA_DIR, tmp_path / "data")
    assert sync_reference(root=tmp_path / "data") == []
    icd = tmp_path / "data" / "2023.1" / "domains" / "icd10.csv"
    icd.write_text("\n".join(icd.read_text(encoding="utf-8").splitlines()[:-5]) + "\n", encoding="utf-8")
    assert sync_reference(root=tmp_path / "data") == [icd]
    assert icd.read_bytes() == (DATA_DIR / "2023.1" / "domains" / "icd10.csv").read_bytes()


def test_mapping_tables_for_every_synthetic_hospital_and_category() -> None:
    from medlake.reference import icd10, institution_catalogue, institutions

    reg = Registry.load()
    drug_format, service_format = (reg.value_domain(d).format for d in ("NHSA.drug_code", "NHSA.service_code"))
    for hospital in institutions(20):  # the first three have versioned files, the others are derived
        for category, pattern in (("drug", drug_format), ("service", service_format)):
            table = reg.mapping_table(hospital.code, category)
            assert table.columns == ["local_code", "local_name", "national_code", "national_name"]
            truth = institution_catalogue(hospital.code).filter(category=category)
            assert table["local_code"].to_list() == truth["local_code"].to_list()
            mapped = table.drop_nulls("national_code")
            assert 0.9 < mapped.height / table.height <= 1.0  # ~3 % of local codes are not mapped yet
            assert mapped["national_code"].str.contains(pattern).all()
            assert set(mapped["national_code"]) <= set(reg.catalogue(category)["national_code"])
        diagnosis = reg.mapping_table(hospital.code, "diagnosis")
        assert set(icd10()["code"]) <= set(diagnosis["local_code"])
        assert (diagnosis["local_code"] == diagnosis["national_code"]).all()
    assert ("H33010200001", "drug") in reg.mapping_keys and ("H33090200016", "drug") not in reg.mapping_keys
    assert reg.mapping_table("H33010200001", "diagnosis").height == \
        Registry.load("2023.1").mapping_table("H33010200001", "diagnosis").height + 1  # U07.1
    with pytest.raises(StandardNotFoundError, match="only hospitals"):
        reg.mapping_table("YB330100", "drug")
    with pytest.raises(StandardNotFoundError, match="expected one of"):
        reg.mapping_table("H33010200001", "lab")


def test_generated_checks_cover_three_kahn_categories_with_enough_types() -> None:
    reg = Registry.load()
    rules = [r for t in reg.tables for r in derive_rules(reg, t)]
    assert len(rules) >= 200
    assert len({r.check_type for r in rules}) >= 30
    assert {r.category for r in rules} == {"completeness", "conformance", "plausibility"}
    assert len({r.rule_id for r in rules}) == len(rules)
    assert all(r.check_type in CHECK_TYPES for r in rules)
    table_defaults = {"schema", "row_count", "freshness", "key_duplicate"}
    for table in reg.tables:
        assert table_defaults <= {r.check_type for r in derive_rules(reg, table) if r.column is None}


def test_generation_is_deterministic_and_checked_in_files_are_current(tmp_path: Path) -> None:
    reg = Registry.load()
    first = [p.read_bytes() for p in generate_checks(reg, tmp_path / "a")]
    second = [p.read_bytes() for p in generate_checks(reg, tmp_path / "b")]
    assert first == second
    shipped = Path(__file__).resolve().parents[2] / "checks" / "generated"
    for path in sorted((tmp_path / "a").iterdir()):
        assert (shipped / path.name).read_bytes() == path.read_bytes(), f"regenerate checks: {path.name}"
    rules = read_contract_rules(tmp_path / "a" / "patient.yaml")
    assert sorted(r.rule_id for r in rules) == sorted(r.rule_id for r in derive_rules(reg, "patient"))
    assert all(r.predicate for r in rules if r.column is not None)


def _id_numbers() -> list[str]:
    valid = []
    for first17 in ("11010519491231002", "33010619850312123", "44030420010101001", "32010219700707777"):
        valid.append(first17 + check_char(first17))
    broken = [v[:17] + ("0" if v[17] != "0" else "1") for v in valid]
    bad_date = "33010619851332123"
    return [*valid, *broken, bad_date + check_char(bad_date)]


def test_id_predicates_agree_with_the_identifier_module() -> None:
    reg = Registry.load()
    rules = {r.check_type: r for r in derive_rules(reg, "patient") if r.column == "id_number"}
    con = duckdb.connect()
    ids = _id_numbers()
    con.register("patient", pa.table({"id_number": ids}))
    digit = [row[0] for row in con.execute(
        f"SELECT coalesce({rules['id_check_digit'].predicate}, false) FROM patient").fetchall()]
    date = [row[0] for row in con.execute(
        f"SELECT coalesce({rules['id_birth_date_valid'].predicate}, false) FROM patient").fetchall()]
    for value, bad_digit, bad_date in zip(ids, digit, date, strict=True):
        assert (bad_digit or bad_date) == (not is_valid_id_number(value)), value


def test_unbound_column_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(DATA_DIR, tmp_path / "data")
    bindings = tmp_path / "data" / "2023.1" / "bindings.yaml"
    bindings.write_text(bindings.read_text(encoding="utf-8").replace("    phone: DE02.01.010.00\n", ""),
                        encoding="utf-8")
    monkeypatch.setenv("MEDLAKE_STANDARDS_DIR", str(tmp_path / "data"))
    with pytest.raises(ConfigurationError, match="patient has unbound columns \\['phone'\\]"):
        Registry.load("2023.1")


def test_cli_list_show_diff_generate(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(standards_app, ["list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "2024.1" in listed.output and "DE02.01.039.00" in listed.output
    shown = runner.invoke(standards_app, ["show", "MLD.setl_status", "--version", "2023.1"])
    assert shown.exit_code == 0 and "'3'" in shown.output and "'4'" not in shown.output
    assert runner.invoke(standards_app, ["show", "nope"]).exit_code == 1
    diffed = runner.invoke(standards_app, ["diff", "2023.1", "2024.1"])
    assert diffed.exit_code == 0 and "330103" in diffed.output
    generated = runner.invoke(standards_app, ["generate-checks", "--out", str(tmp_path)])
    assert generated.exit_code == 0 and (tmp_path / "settlement.yaml").exists()
