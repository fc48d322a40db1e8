"""EMPI: check digits, Chinese names, typo duplicates, twins, incremental stability, manual decisions, CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest
from typer.testing import CliRunner

from medlake.config import Settings
from medlake.empi import FieldMap, FieldMapError, ManualDecisionError, MasterPatientIndex, ModelSettings
from medlake.empi.cli import empi_app
from medlake.empi.clusters import constrained_components
from medlake.empi.comparisons import blocking_candidates
from medlake.empi.features import standardize_records
from medlake.empi.names import name_keys
from medlake.empi.operator import EmpiOperator
from medlake.engine.polars_engine import PolarsEngine
from medlake.identifiers import check_char, is_valid_id_number, normalize_id_number
from medlake.operators.base import Operator, OperatorContext
from medlake.synth.register import synthetic_register

FAST = ModelSettings(u_pairs=1e5, em_pairs=1e5)
FIELDS = FieldMap(
    record_id="record_id", name="name", id_number="id_number", birth_date="birth_date", sex="sex_code",
    phone="phone", address="address", region="region_code", source="institution_code", updated_at="updated_at",
)


def _id(region: str, birth: str, seq: str) -> str:
    return region + birth + seq + check_char(region + birth + seq)


ZHANG = _id("330106", "19800512", "123")  # odd sequence: male
TWIN_A = _id("330108", "19900101", "045")
TWIN_B = _id("330108", "19900101", "047")


def _row(rid: str, name: str | None, id_number: str | None, birth: str | None, sex: str | None,
         phone: str | None, address: str | None, region: str = "330106") -> dict[str, str | None]:
    return {"record_id": rid, "institution_code": rid.split(":")[0], "patient_id": rid.split(":")[1], "name": name,
            "id_number": id_number, "birth_date": birth, "sex_code": sex, "phone": phone, "address": address,
            "region_code": region, "updated_at": "2024-05-01 08:00:00"}


CASES = [
    _row("H1:zhang", "张三丰", ZHANG, "1980-05-12", "1", "13800138000", "文一路10号3幢201室"),
    _row("H2:zhang-typo", "张三峰", ZHANG[:10] + ZHANG[11] + ZHANG[10] + ZHANG[12:], "1980-05-12", "1",
         "13800138000", "文一路10号3幢"),  # homophone character + swapped ID digits (invalid)
    _row("H3:zhang-pinyin", "Sanfeng Zhang", ZHANG[:6] + ZHANG[8:17], None, "1", None, None),  # 15-digit ID
    _row("H1:twin-a", "李明", TWIN_A, "1990-01-01", "1", "13912345678", "庆春路88号1幢1101室", "330108"),
    _row("H2:twin-b", "李亮", TWIN_B, "1990-01-01", "1", "13912345678", "庆春路88号1幢1101室", "330108"),
]


def _records(n: int = 2500, seed: int = 3) -> tuple[pl.DataFrame, pl.DataFrame]:
    reg = synthetic_register(n, seed=seed)
    rid = pl.col("institution_code") + ":" + pl.col("patient_id")
    cases = pl.DataFrame(CASES, schema=dict.fromkeys(CASES[0], pl.Utf8))
    synthetic = reg.records.with_columns(record_id=rid, birth_date=pl.col("birth_date").cast(pl.Utf8))
    records = pl.concat([cases.select(synthetic.columns), synthetic])  # hand-made cases first (first batch)
    return records, reg.truth.with_columns(record_id=rid)


@pytest.fixture(scope="session")
def linked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame, pl.DataFrame]:
    records, truth = _records()
    store = tmp_path_factory.mktemp("empi") / "store"
    first, later = records.head(records.height - 600), records.tail(600)
    MasterPatientIndex(store, model_settings=FAST).link(first, FIELDS, batch_id="b1")
    return store, later, truth


def _copy(store: Path, tmp_path: Path) -> MasterPatientIndex:
    target = tmp_path / "store"
    shutil.copytree(store, target)
    return MasterPatientIndex(target, model_settings=FAST)


def _master(mpi: MasterPatientIndex) -> dict[str, str]:
    return dict(mpi.assignments().select("record_id", "master_id").iter_rows())


# --------------------------------------------------------------------------- pure parts

@pytest.mark.parametrize(
    ("raw", "normalized", "valid"),
    [
        ("11010519491231002X", "11010519491231002X", True),
        ("11010519491231002x", "11010519491231002X", True),  # lower-case check character
        ("110105491231002", "11010519491231002X", True),  # 15 → 18 upgrade yields check X
        ("１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X", True),  # full-width
        ("110105194912310021", "110105194912310021", False),  # wrong check digit
        ("110105190002290010", "110105190002290010", False),  # 1900-02-29 does not exist
        ("1101051949123100", "1101051949123100", False),  # 16 characters
    ],
)
def test_id_number_check_digit_edge_cases(raw: str, normalized: str, valid: bool) -> None:
    frame = pl.DataFrame({"rid": ["r1"], "sfz": [raw], "csrq": ["1949-12-30"], "xb": ["男"]})
    features = standardize_records(frame, FieldMap.parse("record_id=rid,id_number=sfz,birth_date=csrq,sex=xb"))
    row = features.row(0, named=True)
    assert row["id_number"] == normalized
    assert row["id_valid"] is valid
    if valid:  # a valid ID wins over the typed birth date and sex, and the disagreement is flagged
        assert row["birth_date"] == "1949-12-31" and row["birth_date_conflict"]
        assert row["sex"] == "2" and row["sex_conflict"]
        assert row["region"] == "110105"
    else:
        assert row["birth_date"] == "1949-12-30" and row["sex"] == "1"


def test_vectorized_id_columns_agree_with_identifiers() -> None:
    """The polars normalization/validation gives medlake.identifiers' answers on valid, mistyped and odd IDs."""
    raws: list[str] = []
    for n in range(400):
        good = _id(f"{330100 + n % 97:06d}", f"{1930 + n % 80}{1 + n % 12:02d}{1 + n % 28:02d}", f"{n % 1000:03d}")
        raws += [good, good[:17] + ("0" if good[17] != "0" else "1"), good.lower(), good[:6] + good[8:17],
                 " " + good[:10] + " " + good[10:], good[:16], good[:6] + "19000229" + good[14:]]
    raws += ["", "ABCDEFGHIJKLMNOPQR", "１１０１０５１９４９１２３１００２ｘ"]
    features = standardize_records(pl.DataFrame({"rid": [str(i) for i in range(len(raws))], "sfz": raws}),
                                   FieldMap.parse("record_id=rid,id_number=sfz"))
    expected = [normalize_id_number(r) for r in raws]
    assert features["id_valid"].to_list() == [is_valid_id_number(e) for e in expected]
    assert features.filter(pl.col("id_valid"))["id_number"].to_list() == [e for e in expected if is_valid_id_number(e)]
    assert features["id_valid"].sum() > 800  # the good ones, lower-case x and 15-digit upgrades among them


def test_blocking_candidates_keep_exactly_rows_sharing_a_key() -> None:
    existing = pl.DataFrame({"record_id": ["e1", "e2", "e3", "e4"], "id_number": ["A", None, "C", None],
                             "phone": ["1", "2", None, None]})
    incoming = pl.DataFrame({"record_id": ["i1", "i2"], "id_number": ["A", None], "phone": [None, "2"]})
    assert sorted(blocking_candidates(existing, incoming)["record_id"].to_list()) == ["e1", "e2"]


def test_check_char_ten_is_x() -> None:
    assert check_char("11010519491231002") == "X"


def test_names_pinyin_heteronyms_surnames_and_english_order() -> None:
    chinese = name_keys("张三")
    for variant in ("Zhang San", "ZHANG SAN", "San Zhang", "zhang-san"):
        other = name_keys(variant)
        assert other is not None and chinese is not None and set(chinese.keys) & set(other.keys), variant
    assert name_keys("单田芳").keys == ("shan|tianfang",)  # surname reading, not dan
    assert name_keys("曾国藩").surnames == ("zeng",) and name_keys("解缙").surnames == ("xie",)
    assert name_keys("欧阳修").surnames == ("ouyang",)
    assert "zhang|chong" in name_keys("张重").keys and "zhang|zhong" in name_keys("张重").keys  # heteronym set
    assert not set(name_keys("张三").keys) & set(name_keys("李四").keys)
    assert name_keys("Lyu Bu").key == name_keys("吕布").key == "lv|bu"
    assert name_keys("  ") is None


def test_field_map_parse_and_errors() -> None:
    fm = FieldMap.parse("name=xm, birth_date=csrq")
    assert fm.name == "xm" and fm.birth_date == "csrq" and fm.id_number is None
    with pytest.raises(FieldMapError, match="surname"):
        FieldMap.parse("surname=xm")
    with pytest.raises(FieldMapError, match="item 2"):
        FieldMap.parse("name=xm,csrq")
    with pytest.raises(FieldMapError, match="birth_date=csrq"):
        standardize_records(pl.DataFrame({"xm": ["张三"]}), fm)


def test_constrained_components_keep_different_ids_and_unlinks_apart() -> None:
    edges = pl.DataFrame({"a": [0, 1, 3, 4], "b": [1, 2, 4, 5], "score": [0.99, 0.98, 0.97, 0.99],
                          "forced": [False] * 4})
    labels = constrained_components(7, edges, {0: frozenset({"A"}), 2: frozenset({"B"})}, [(3, 5)])
    assert labels[0] == labels[1] != labels[2]
    assert labels[4] == labels[5] != labels[3]
    assert labels[6] == 6


# --------------------------------------------------------------------------- linkage

def test_typo_duplicates_link_and_twins_do_not(linked: tuple[Path, pl.DataFrame, pl.DataFrame],
                                                 tmp_path: Path) -> None:
    store, _, _ = linked
    mpi = _copy(store, tmp_path)
    masters = _master(mpi)
    assert masters["H1:zhang"] == masters["H2:zhang-typo"] == masters["H3:zhang-pinyin"]
    assert masters["H1:twin-a"] != masters["H2:twin-b"]
    golden = mpi.store.read("golden_record").filter(pl.col("master_id") == masters["H1:zhang"]).row(0, named=True)
    assert golden["id_number"] == ZHANG and golden["record_count"] == 3 and golden["name"] in {"张三丰", "张三峰"}


def test_pairwise_quality_on_synthetic_truth(linked: tuple[Path, pl.DataFrame, pl.DataFrame],
                                             tmp_path: Path) -> None:
    store, _, truth = linked
    assigned = _copy(store, tmp_path).assignments().join(truth.select("record_id", "person_id"), on="record_id")

    def pairs(*by: str) -> int:
        return int(assigned.group_by(*by).len().select((pl.col("len") * (pl.col("len") - 1) // 2).sum()).item())

    true_positive = pairs("master_id", "person_id")
    precision, recall = true_positive / pairs("master_id"), true_positive / pairs("person_id")
    assert precision > 0.98 and recall > 0.95, (precision, recall)


def test_master_ids_stable_across_incremental_loads(linked: tuple[Path, pl.DataFrame, pl.DataFrame],
                                                    tmp_path: Path) -> None:
    store, later, _ = linked
    mpi = _copy(store, tmp_path)
    before = _master(mpi)
    result = mpi.link(later.head(300), FIELDS, batch_id="b2")
    assert not result.trained and result.records_new == 300
    result = mpi.link(later.tail(300), FIELDS, batch_id="b3")
    after = _master(mpi)
    merged = dict(
        mpi.store.read("empi_audit").filter(pl.col("event") == "merge")
        .select("other_master_id", "master_id").iter_rows()
    )
    for record, master in before.items():
        assert after[record] == merged.get(master, master)  # unchanged unless its master merged (audited)
    assert len(after) == len(before) + 600
    again = mpi.link(later, FIELDS, batch_id="b4")  # re-delivery: nothing changes
    assert again.records_unchanged == 600 and again.new_masters == 0 and _master(mpi) == after


def test_manual_unlink_splits_and_survives_next_run(linked: tuple[Path, pl.DataFrame, pl.DataFrame],
                                                    tmp_path: Path) -> None:
    store, later, _ = linked
    mpi = _copy(store, tmp_path)
    original = _master(mpi)["H1:zhang"]
    result = mpi.record_manual_decision("H1:zhang", "H2:zhang-typo", "unlink", who="dr.wu", why="different person")
    assert result is not None and result.splits == 1
    masters = _master(mpi)
    assert masters["H1:zhang"] == original  # the founder's part keeps the master ID
    assert masters["H1:zhang"] != masters["H2:zhang-typo"]
    audit = mpi.store.read("empi_audit").filter(pl.col("event") == "split")
    assert audit.height == 1 and audit["reason"][0] == "dr.wu: different person"
    # next run: the typo record is re-delivered with a change and new records arrive; the unlink still holds
    retyped = later.head(50).vstack(
        pl.DataFrame([_row("H2:zhang-typo", "张三峰", ZHANG, "1980-05-12", "1", "13800138000", None)],
                     schema=dict.fromkeys(CASES[0], pl.Utf8)).select(later.columns)
    )
    mpi.link(retyped, FIELDS, batch_id="b5")
    masters = _master(mpi)
    assert masters["H1:zhang"] != masters["H2:zhang-typo"]
    assert masters["H1:zhang"] == original
    review = mpi.store.read("empi_review")
    assert review.filter(pl.col("record_a").is_in(["H1:zhang", "H2:zhang-typo"])
                         & pl.col("record_b").is_in(["H1:zhang", "H2:zhang-typo"])).height == 0


def test_manual_link_merges_keeping_older_master(linked: tuple[Path, pl.DataFrame, pl.DataFrame],
                                                 tmp_path: Path) -> None:
    store, _, _ = linked
    mpi = _copy(store, tmp_path)
    before = _master(mpi)
    result = mpi.record_manual_decision("H1:twin-a", "H2:twin-b", "link", who="clerk", why="test merge")
    assert result is not None and result.merges == 1
    after = _master(mpi)
    assert after["H1:twin-a"] == after["H2:twin-b"] in {before["H1:twin-a"], before["H2:twin-b"]}
    with pytest.raises(ManualDecisionError, match="link or unlink"):
        mpi.record_manual_decision("a", "b", "maybe", who="x")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- operator and CLI

def test_operator_on_dwd_patient_frame(tmp_path: Path) -> None:
    records, _ = _records(400, seed=5)
    frame = records.drop("record_id").with_columns(pl.col("birth_date").str.to_date())
    operator = EmpiOperator({"u_pairs": 5e4, "em_pairs": 5e4, "store": "dwd"})
    assert isinstance(operator, Operator) and operator.kind == "empi"
    ctx = OperatorContext(engine=PolarsEngine(), settings=Settings(home=tmp_path), table="dwd.patient", run_id="r1")
    result = operator.run(nw.from_native(frame.lazy()), ctx)
    out = nw.to_native(result.frame).collect()
    assert out.columns == ["record_id", "master_id", "score"] and out.height == frame.height
    assert out["record_id"][0].startswith("H") and ":" in out["record_id"][0]
    assert result.metrics["masters"] < frame.height and (tmp_path / "lake/dwd/golden_record").exists()
    with pytest.raises(FieldMapError, match="thresold"):
        EmpiOperator({"thresold": 1})


def test_cli_links_pinyin_and_english_names_from_csv(tmp_path: Path) -> None:
    people = [("Zhang San", "张三", "1980-05-12", "13800138000"), ("Li Si", "李四", "1975-03-02", "13900000001"),
              ("Wang Wu", "王五", "1990-11-30", "13700000002"), ("Zhao Liu", "赵六", "1985-07-07", "13600000003")]
    rows = []
    for i, (name, chinese, birth, phone) in enumerate(people):
        family, given = name.split()
        for j, shown in enumerate((name, name.upper(), f"{given} {family}", chinese)):
            rows.append({"bh": f"r{i}{j}", "xm": shown, "csrq": birth, "dh": phone, "person": name})
    register, _ = _records(600, seed=9)  # a realistic background register, so u is learnt from non-matches
    background = register.slice(len(CASES)).select(
        pl.col("record_id").alias("bh"), pl.col("name").alias("xm"), pl.col("birth_date").alias("csrq"),
        pl.col("phone").alias("dh"), pl.col("record_id").alias("person"),
    )
    source = pl.concat([pl.DataFrame(rows), background])
    src = tmp_path / "register.csv"
    source.write_csv(src)
    out = tmp_path / "out.parquet"
    state = str(tmp_path / "state")
    args = ["link", str(src), "--map", "record_id=bh,name=xm,birth_date=csrq,phone=dh", "--out", str(out)]
    result = CliRunner().invoke(empi_app, [*args, "--store", state])
    assert result.exit_code == 0, result.output
    linked = pl.read_parquet(out).join(source.select(pl.col("bh").alias("record_id"), "person"), on="record_id")
    assert linked.columns[:3] == ["record_id", "master_id", "score"] and linked.height == source.height
    per_person = linked.filter(pl.col("record_id").str.starts_with("r")).group_by("person").agg(
        pl.col("master_id").n_unique()
    )
    assert per_person["master_id"].to_list() == [1, 1, 1, 1]
    decided = CliRunner().invoke(empi_app, ["decide", "r00", "r03", "--decision", "unlink", "--who", "qa",
                                            "--store", state])
    assert decided.exit_code == 0 and "1 splits" in decided.output, decided.output
