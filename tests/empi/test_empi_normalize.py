"""Normalisation units of the EMPI operator: dates, phones, addresses, names, the guardian-ID and household rules."""

from __future__ import annotations

import polars as pl
import pytest

from medlake.empi.features import standardize_records
from medlake.empi.field_map import FieldMap
from medlake.empi.names import name_keys
from medlake.empi.normalize import address_parts, normalized_date, normalized_phone
from medlake.empi.rules import apart_by_household_rule


@pytest.mark.parametrize("raw", ["1986年6月3日", "19860603", "1986-06-03", "1986/6/3", "1986.06.03",
                                 "１９８６年６月３日", "1986-06-03 08:30:00", " 1986 / 6 / 3 "])
def test_dates_in_every_form_become_iso(raw: str) -> None:
    assert pl.select(normalized_date(pl.lit(raw))).item() == "1986-06-03"


@pytest.mark.parametrize("raw", ["1986-02-30", "1986年13月1日", "june 1986", "", "198606"])
def test_impossible_or_partial_dates_become_null(raw: str) -> None:
    assert pl.select(normalized_date(pl.lit(raw))).item() is None


def test_phones_become_e164() -> None:
    raw = pl.Series(["+86 138 1234 5678", "138-1234-5678", "86-13812345678", "0086 13812345678", "0571-88123456",
                     "(0571)88123456", "+86 571 88123456", "+1 650 253 0000", "", None, "n/a"])
    assert normalized_phone(raw).to_list() == [
        "+8613812345678", "+8613812345678", "+8613812345678", "+8613812345678", "+8657188123456",
        "+8657188123456", "+8657188123456", "+16502530000", None, None, None,
    ]


def test_address_prefix_split_off_and_building_spelled_one_way() -> None:
    parts = address_parts(pl.Series([
        "浙江省杭州市西湖区文一路100号3栋2单元301室", "杭州市西湖区文一路１００号3幢2单元301", "浙江杭州西湖区文一路100号3号楼2单元301",
        "文一路100号3幢2单元301", "翠苑小区3幢", "8 Stanley Street", None,
    ]))
    assert parts["address"].to_list() == ["文一路100号3幢2单元301"] * 4 + ["翠苑小区3幢", "8stanleystreet", None]
    assert parts["address_region"].to_list() == ["浙江省杭州市西湖区", "杭州市西湖区", "浙江杭州西湖区", None, None, None, None]


def test_traditional_and_one_word_pinyin_names_meet_the_han_form() -> None:
    han = name_keys("张伟")
    assert han is not None
    for variant in ("張偉", "zhangwei", "ZhangWei", "ZHANGWEI", "weizhang", "Wei Zhang"):
        keys = name_keys(variant)
        assert keys is not None and set(keys.keys) & set(han.keys), variant
        assert keys.blocking_key == han.blocking_key, variant  # the blocking key ignores the order
    assert name_keys("張偉").normalized == "张伟"  # type: ignore[union-attr]
    assert "ouyang|xiaoming" in name_keys("ouyangxiaoming").keys  # type: ignore[union-attr]
    assert name_keys("gibb").keys == ("gibb|",)  # type: ignore[union-attr]


def _features(rows: list[dict[str, str | None]]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema={c: pl.Utf8 for c in ("record_id", "name", "id_number", "birth_date", "phone")})
    return standardize_records(frame, FieldMap.identity(frame.columns))


def test_guardian_id_is_not_the_infants_own() -> None:
    parent = "330106198206030018"  # born 1982-06-03, valid check character
    features = _features([
        {"record_id": "parent", "name": "王强", "id_number": parent, "birth_date": "1982-06-03", "phone": None},
        {"record_id": "infant", "name": "王小宝", "id_number": parent, "birth_date": "2025年11月2日", "phone": None},
        {"record_id": "slip", "name": "王强", "id_number": parent, "birth_date": "1982-03-06", "phone": None},
        {"record_id": "typo", "name": "王强", "id_number": parent, "birth_date": "1982-06-08", "phone": None},
        {"record_id": "day_off", "name": "王强", "id_number": parent, "birth_date": "1982-05-31", "phone": None},
    ]).sort("record_id")
    rows = {r["record_id"]: r for r in features.iter_rows(named=True)}
    assert rows["infant"]["id_number"] is None and not rows["infant"]["id_valid"]
    assert rows["infant"]["birth_date"] == "2025-11-02"
    for own in ("parent", "slip", "typo", "day_off"):  # swapped, a digit or a few days off: still the person's own
        assert rows[own]["id_number"] == parent and rows[own]["birth_date"] == "1982-06-03", own


def test_household_rule_keeps_twins_and_relatives_apart_unless_ids_agree() -> None:
    features = _features([
        {"record_id": "a", "name": "李明", "id_number": "330106201501010014", "birth_date": "2015-01-01",
         "phone": "13800000000"},
        {"record_id": "b", "name": "李丽", "id_number": None, "birth_date": "2015-01-01", "phone": "13800000000"},
        {"record_id": "c", "name": "Li Ming", "id_number": None, "birth_date": "2015-01-01", "phone": "13800000000"},
        {"record_id": "d", "name": "李芳", "id_number": "330106201501010014", "birth_date": "2015-01-01",
         "phone": None},
        {"record_id": "e", "name": "李芳", "id_number": "330106201501010041", "birth_date": "2015-01-01",
         "phone": None},
        {"record_id": "f", "name": "李芳", "id_number": "330106201501010102", "birth_date": "2015-01-01",
         "phone": None},
        {"record_id": "g", "name": "李明", "id_number": None, "birth_date": "1985-03-12", "phone": "13800000000"},
        {"record_id": "h", "name": "李明", "id_number": None, "birth_date": "2015-10-01", "phone": "13800000000"},
    ])
    pairs = pl.DataFrame({
        "record_a": ["a", "a", "a", "a", "a", "b", "a", "a"], "record_b": ["b", "c", "d", "e", "f", "c", "g", "h"],
        "score": [0.99] * 8, "rule": ["fellegi_sunter"] * 8,
    })
    kept = apart_by_household_rule(pairs, features)
    # b (a twin's other name) is apart from a and c; c is a's pinyin; d carries a's ID; e's ID is one slip (two
    # digits swapped) from a's; f's is the twin's own (sequence number and check character differ); g has a's name
    # and phone but a father's birth date; h's birth date is a's with one digit mistyped
    assert sorted(zip(kept["record_a"], kept["record_b"], strict=True)) == [
        ("a", "c"), ("a", "d"), ("a", "e"), ("a", "h"),
    ]
