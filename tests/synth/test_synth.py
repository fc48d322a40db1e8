"""The synthetic source generator: landing contract, IDs, manifests, encodings, truth, revisions, defects."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from collections import defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from medlake.config import Settings
from medlake.identifiers import normalize_id_number, parse_id_number
from medlake.lake.manifest import read_manifest
from medlake.reference import icd10, institution
from medlake.reference.institutions import SEX_STYLES
from medlake.sources import source
from medlake.synth import SynthConfig, SynthConfigError, generate

CONFIG = SynthConfig(patients=800, days=4, institutions=4, seed=11, history_days=3, defect_rate=3.0, progress=False)


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, object]:
    settings = Settings(home=tmp_path_factory.mktemp("synth"))
    return settings, generate(CONFIG, settings)


def _rows(path: Path, encoding: str) -> tuple[list[str], list[list[str]]]:
    """Header and the rows of a CSV/JSONL file; malformed or undecodable lines are returned as-is."""
    raw = path.read_bytes()
    if path.suffix == ".jsonl":
        objs = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
        header = list(objs[0]) if objs else []
        return header, [[o[h] if o[h] is not None else "" for h in header] for o in objs]
    text = raw.decode(encoding, errors="replace")
    reader = list(csv.reader(io.StringIO(text)))
    return reader[0], reader[1:]


def _landing(settings: Settings, table: str) -> pl.DataFrame:
    """All well-formed delivered rows of ``table`` with _inst and _date."""
    spec = source(table)
    records: list[dict[str, str]] = []
    for manifest_path in sorted(settings.landing.glob("*/*/manifest.json")):
        m = read_manifest(manifest_path.parent)
        for f in m.files:
            if f.table != table:
                continue
            header, rows = _rows(manifest_path.parent / f.file, f.encoding)
            assert header == spec.column_names
            for r in rows:
                if len(r) == len(header) and "\ufffd" not in "".join(r):
                    records.append(
                        {**dict(zip(header, r, strict=True)), "_inst": m.institution, "_date": m.business_date}
                    )
    return pl.DataFrame(records, schema={c: pl.Utf8 for c in [*spec.column_names, "_inst", "_date"]})


def _truth(settings: Settings, name: str) -> pl.DataFrame:
    return pl.read_parquet(settings.truth / f"{name}.parquet")


def test_layout_follows_the_landing_contract(run) -> None:
    settings, report = run
    assert report.rows["encounter"] >= CONFIG.total_encounters
    hospitals = sorted(p.name for p in settings.landing.iterdir())
    assert "YB330100" in hospitals and len(hospitals) == CONFIG.institutions + 1
    for code in hospitals:
        batches = sorted(p.name for p in (settings.landing / code).iterdir())
        assert batches == ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
        tables = {f.table for f in read_manifest(settings.landing / code / batches[0]).files}
        expected = (
            {"settlement"} if code == "YB330100" else {"patient", "encounter", "diagnosis", "order_item", "lab_result"}
        )
        assert tables == expected


def test_manifest_rows_sums_and_sha_agree_with_files(run) -> None:
    settings, _ = run
    checked = 0
    for manifest_path in settings.landing.glob("*/*/manifest.json"):
        m = read_manifest(manifest_path.parent)
        assert m.batch_id == f"{m.institution}-{m.business_date.replace('-', '')}"
        for f in m.files:
            path = manifest_path.parent / f.file
            assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256
            header, rows = _rows(path, f.encoding)
            assert len(rows) == f.rows, path
            for column, expected in f.sums.items():
                i = header.index(column)
                total = Decimal(0)
                for r in rows:  # a malformed line keeps its amounts (an extra or a cut-off last field)
                    if len(r) > i:
                        with contextlib.suppress(InvalidOperation):
                            total += Decimal(r[i])
                assert total == Decimal(expected), (path, column)
                checked += 1
    assert checked > 0


def test_gbk_files_decode_as_gbk_and_not_as_utf8(run) -> None:
    settings, _ = run
    gbk = [p for p in settings.landing.glob("*/*/manifest.json") if read_manifest(p.parent).files[0].encoding == "gbk"]
    assert gbk
    lines = (gbk[0].parent / "patient.csv").read_bytes().split(b"\n")
    # every line decodes strictly as GBK but the ones the writer made undecodable on purpose (the truth lists them)
    clean = [line for line in lines if b"\xff\xfe" not in line]
    decoded = [line.decode("gbk") for line in clean]
    assert decoded[0].startswith("patient_id,")
    han_lines = [line for line, text in zip(clean, decoded, strict=True) if any("\u4e00" <= c <= "\u9fff" for c in text)]
    assert len(han_lines) > len(clean) // 2
    for line in han_lines:  # Han characters in GBK bytes are never valid UTF-8
        with pytest.raises(UnicodeDecodeError):
            line.decode("utf-8")


def test_id_numbers_are_valid_and_agree_with_sex_and_birth(run) -> None:
    settings, _ = run
    patients = _landing(settings, "patient")
    defects = _truth(settings, "defects").filter(pl.col("table") == "patient")
    flagged = set(zip(defects["institution_code"], defects["key"], strict=True))
    variants = _truth(settings, "record_variants")
    transposed = set(
        zip(
            *variants.filter(pl.col("variants").str.contains("id_transposed")).select("institution_code", "patient_id"),
            strict=True,
        )
    )
    checked = 0
    for row in patients.iter_rows(named=True):
        key = (row["_inst"], row["patient_id"])
        if key in flagged or not row["id_number"]:
            continue
        normalized = normalize_id_number(row["id_number"])
        if key in transposed:
            continue
        parsed = parse_id_number(normalized)
        style = SEX_STYLES[institution(row["_inst"]).sex_style]
        assert style[parsed.sex_code] == row["sex_code"], row
        if row["birth_date"]:
            assert parsed.birth_date == date.fromisoformat(row["birth_date"]), row
        checked += 1
    assert checked > 500
    legacy = patients.filter(pl.col("id_number").str.len_chars() == 15)
    assert legacy.height > 0


def test_same_person_registered_at_several_hospitals_is_in_truth(run) -> None:
    settings, _ = run
    persons = _truth(settings, "persons")
    delivered = _landing(settings, "patient").filter(pl.col("patient_id") != "")  # a missing key is a defect
    delivered = delivered.select(pl.col("_inst").alias("institution_code"), "patient_id").unique()
    assert delivered.join(persons, on=["institution_code", "patient_id"], how="anti").height == 0
    multi = persons.group_by("person_id").agg(pl.col("institution_code").n_unique().alias("n")).filter(pl.col("n") > 1)
    assert multi.height > 0.1 * CONFIG.patients
    twins = _truth(settings, "twins")
    master = _truth(settings, "person_master")
    assert twins.height > 0
    pair = twins.row(0, named=True)
    a = master.filter(pl.col("person_id") == pair["person_id_a"]).row(0, named=True)
    b = master.filter(pl.col("person_id") == pair["person_id_b"]).row(0, named=True)
    assert a["birth_date"] == b["birth_date"] and a["address"] == b["address"]
    assert a["id_number"] != b["id_number"] and a["name"] != b["name"]


def test_settlements_are_revised_with_higher_revision_later(run) -> None:
    settings, _ = run
    setl = _landing(settings, "settlement").filter(pl.col("setl_status").is_in(["1", "2", "3"]))
    setl = setl.with_columns(pl.col("revision").cast(pl.Int64, strict=False))
    revised = setl.filter(pl.col("revision") > 1)
    assert revised.height > 0
    assert set(revised["setl_status"]) <= {"2", "3"}
    first = setl.filter(pl.col("revision") == 1).select(
        "setl_id", pl.col("updated_at").alias("u1"), pl.col("_date").alias("d1")
    )
    joined = revised.join(first, on="setl_id")
    assert joined.height > 0
    assert (joined["updated_at"] > joined["u1"]).all() and (joined["_date"] >= joined["d1"]).all()


def test_settlement_total_is_sum_of_orders(run) -> None:
    settings, _ = run
    orders = _landing(settings, "order_item").unique()
    setl = _landing(settings, "settlement").filter(pl.col("revision") == "1").unique()
    sums = orders.group_by("_inst", "encounter_id").agg(
        pl.col("amount").cast(pl.Decimal(18, 2), strict=False).sum().alias("orders")
    )
    j = setl.join(sums, left_on=["medins_code", "encounter_id"], right_on=["_inst", "encounter_id"])
    assert j.height > 100
    agree = (j["total_amount"].cast(pl.Decimal(18, 2), strict=False) == j["orders"]).mean()
    assert agree > 0.9


def test_defect_rates_are_roughly_honored_and_visible(run) -> None:
    settings, report = run
    defects = _truth(settings, "defects")
    total_rows = sum(report.rows.values())
    rates = CONFIG.effective_rates
    dup = defects.filter(pl.col("defect_type") == "duplicate").height
    assert 0.6 * rates.duplicate * total_rows < dup < 1.4 * rates.duplicate * total_rows
    missing = defects.filter(pl.col("defect_type") == "missing_required").height
    assert 0.5 * rates.missing_required * total_rows < missing < 1.4 * rates.missing_required * total_rows
    assert defects.filter(pl.col("defect_type") == "malformed_line").height > 0
    assert set(defects["defect_type"]) >= {"invalid_code", "impossible_date", "out_of_range", "contradiction"}
    bad_icd = defects.filter((pl.col("table") == "diagnosis") & (pl.col("defect_type") == "invalid_code"))
    diag = _landing(settings, "diagnosis").with_columns(key=pl.concat_str("encounter_id", pl.lit("|"), "diag_seq"))
    hit = diag.join(bad_icd, left_on=["_inst", "key"], right_on=["institution_code", "key"])
    assert hit.height > 0
    assert not hit["diag_code"].is_in(icd10()["code"].implode()).any()


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    config = SynthConfig(patients=150, days=2, institutions=3, seed=5, history_days=2, defect_rate=5.0, progress=False)
    digests = []
    for name in ("a", "b"):
        settings = Settings(home=tmp_path / name)
        generate(config, settings)
        files = sorted(p for p in settings.landing.rglob("*") if p.is_file())
        digests.append(
            {str(p.relative_to(settings.landing)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
        )
    assert digests[0] == digests[1]
    other = Settings(home=tmp_path / "c")
    generate(SynthConfig(**{**config.__dict__, "seed": 6}), other)
    assert (other.landing / "YB330100" / "2026-01-01" / "manifest.json").read_bytes() != (
        tmp_path / "a" / "landing" / "YB330100" / "2026-01-01" / "manifest.json"
    ).read_bytes()
    assert pl.read_parquet(tmp_path / "a/truth/defects.parquet").equals(
        pl.read_parquet(tmp_path / "b/truth/defects.parquet")
    )


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(SynthConfigError, match="patients"):
        SynthConfig(patients=0)
    with pytest.raises(SynthConfigError, match="defect_rate"):
        SynthConfig(defect_rate=100.0)


def test_cli_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from medlake.synth.cli import synth_command

    monkeypatch.setenv("MEDLAKE_HOME", str(tmp_path))
    app = typer.Typer()
    app.command()(synth_command)
    result = CliRunner().invoke(
        app,
        [
            "--patients",
            "50",
            "--days",
            "2",
            "--institutions",
            "2",
            "--seed",
            "3",
            "--history-days",
            "1",
            "--start-date",
            "2026-03-01",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "landing" / "YB330100" / "2026-03-02" / "manifest.json").exists()
    assert "encounter" in result.output
    counts = defaultdict(int)
    for p in (tmp_path / "truth").glob("*.parquet"):
        counts[p.stem] += 1
    assert {"persons", "defects", "twins", "item_codes", "settlements"} <= set(counts)
