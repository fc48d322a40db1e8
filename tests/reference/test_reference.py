"""Reference data and per-hospital local coding."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

import pytest

from medlake.reference import (
    ReferenceDataError,
    drugs,
    icd10,
    institution,
    institution_mapping,
    institutions,
    lab_tests,
    local_item_code,
    local_item_name,
    regions,
    service_items,
    surnames,
)


def test_region_codes_are_real_county_codes() -> None:
    reg = regions()
    assert reg.height >= 100
    assert reg["region_code"].n_unique() == reg.height
    assert all(re.fullmatch(r"[1-6]\d{5}", c) and not c.endswith("00") for c in reg["region_code"])
    assert reg.filter(reg["region_code"] == "330106")["name"].item() == "西湖区"


def test_icd10_subset_has_surveillance_codes() -> None:
    icd = icd10()
    assert icd.height >= 150
    codes = set(icd["code"])
    assert {"A09.0", "J11.1", "B01.9", "A90.x", "B08.4"} <= codes
    assert icd["code"].n_unique() == icd.height
    assert (icd["notifiable"] != "").sum() >= 20


def test_drug_and_service_catalogues() -> None:
    d = drugs()
    assert d.height >= 200
    assert all(re.fullmatch(r"[XZ][A-Z]\d{2}[A-Z0-9]{2}[A-Z]\d{3}[A-Z]\d{3}\d{9}", c) for c in d["national_code"])
    assert d["national_code"].n_unique() == d.height
    s = service_items()
    assert s.height >= 100
    assert all(re.fullmatch(r"\d{9}", c) for c in s["national_code"])
    assert (s["price"].cast(float) > 0).all()


def test_lab_tests_and_surnames() -> None:
    lab = lab_tests()
    assert lab.height >= 30
    assert (lab["ref_low"] < lab["ref_high"]).all()
    sn = surnames()
    assert sn.filter(sn["surname"] == "单")["pinyin"].item() == "shan"


def test_local_codes_are_deterministic_unique_and_hospital_specific() -> None:
    a, b = institutions(2)
    code = drugs()["national_code"][0]
    assert local_item_code(a.code, code) == local_item_code(a.code, code)
    assert local_item_code(a.code, code) != local_item_code(b.code, code)
    for inst in (a, b):
        mapping = institution_mapping(inst.code)
        assert mapping["local_code"].n_unique() == mapping.height
    with pytest.raises(ReferenceDataError, match="not in the reference catalogue"):
        local_item_code(a.code, "NOPE")


def test_mapping_leaves_about_three_percent_unmapped() -> None:
    shares = [institution_mapping(i.code)["national_code"].null_count() / 325 for i in institutions(6)]
    assert 0.005 < sum(shares) / len(shares) < 0.07


def _mapping_digest_in_subprocess(hash_seed: str) -> str:
    code = ("import hashlib; from medlake.reference import institution_mapping; "
            "print(hashlib.sha256(institution_mapping('H33010200001').write_csv().encode()).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_mapping_tables_are_the_same_in_every_process() -> None:
    """Generated deliveries and the mapping tables the lake reads must agree run after run: nothing may depend on
    Python's per-process string hashing or on import order."""
    here = hashlib.sha256(institution_mapping("H33010200001").write_csv().encode()).hexdigest()
    assert _mapping_digest_in_subprocess("1") == here
    assert _mapping_digest_in_subprocess("2") == here


def test_local_names_vary_but_mostly_keep_the_national_name() -> None:
    names = drugs()["name"].to_list()
    local = [local_item_name("H33010200001", n) for n in names]
    changed = sum(a != b for a, b in zip(names, local, strict=True))
    assert 0.2 * len(names) < changed < 0.6 * len(names)
    assert local_item_name("H33010600002", "注射用头孢曲松钠") in {
        "注射用头孢曲松钠",
        "注射用头孢曲松钠(罗氏芬)",
        "注射用头孢曲松钠 1.0g",
        "头孢曲松钠针",
        "注射用头孢曲松钠（1.0g）",
    }


def test_institutions_mix_formats_and_encodings() -> None:
    insts = institutions(20)
    assert all(re.fullmatch(r"H\d{6}\d{5}", i.code) for i in insts)
    assert len({i.code for i in insts}) == 20
    assert {(i.delivery_format, i.encoding) for i in insts} == {("csv", "utf-8"), ("csv", "gbk"), ("jsonl", "utf-8")}
    assert {i.sex_style for i in insts} == {"code", "chinese", "letter"}
    assert institution(insts[7].code) == insts[7]
    with pytest.raises(ReferenceDataError):
        institution("H00000000000")
