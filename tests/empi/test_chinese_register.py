"""The independent Chinese test register has the properties its error model promises."""

from __future__ import annotations

import polars as pl
import pytest

from medlake.identifiers import is_valid_id_number
from tests.empi.chinese_register import chinese_register


@pytest.fixture(scope="module")
def register() -> pl.DataFrame:
    return chinese_register(3000, seed=5)


def test_size_truth_and_determinism(register: pl.DataFrame) -> None:
    assert register["person_id"].n_unique() >= 3000
    assert 1.4 < register.height / register["person_id"].n_unique() < 2.0
    assert register["record_id"].is_unique().all()
    assert chinese_register(300, seed=5).equals(chinese_register(300, seed=5))


def test_households_share_phone_and_address_across_persons(register: pl.DataFrame) -> None:
    # the same phone (last 8 digits, whatever the format) or the same street and house number on two persons
    keys = {"phone": pl.col("phone").str.replace_all(r"\D", "").str.slice(-8),
            "address": pl.col("address").str.normalize("NFKC").str.extract(r"((?:路|街|大道)\d+号)", 1)}
    for column, key in keys.items():
        shared = (
            register.with_columns(key=key).drop_nulls("key")
            .group_by("household_id", "key").agg(pl.col("person_id").n_unique().alias("persons"))
        )
        assert (shared["persons"] > 1).sum() > 300, column


def test_twins_and_guardian_ids(register: pl.DataFrame) -> None:
    ids = register.filter(pl.col("id_number").map_elements(is_valid_id_number, return_dtype=pl.Boolean))
    birth_of_id = ids.with_columns(id_birth=pl.col("id_number").str.slice(6, 8))
    # the same valid ID on two persons: an infant under a parent's ID (different birth dates)
    shared = birth_of_id.group_by("id_number").agg(pl.col("person_id").n_unique().alias("persons"))
    assert (shared["persons"] > 1).sum() > 5
    # twins: two persons of one household with one ID birth date and different names
    twins = (
        birth_of_id.group_by("household_id", "id_birth")
        .agg(pl.col("person_id").n_unique().alias("persons"))
        .filter(pl.col("persons") > 1)
    )
    assert twins.height > 5


def test_format_variety(register: pl.DataFrame) -> None:
    dates, phones, names = register["birth_date"].drop_nulls(), register["phone"].drop_nulls(), register["name"]
    for pattern in (r"^\d{4}年\d{1,2}月\d{1,2}日$", r"^\d{8}$", r"^\d{4}-\d{2}-\d{2}$", r"^\d{4}/\d{1,2}/\d{1,2}$"):
        assert dates.str.contains(pattern).sum() > 100, pattern
    for pattern in (r"^\+86 1", r"^1\d{2}-\d{4}-\d{4}$", r"^0\d{2,3}-\d{7,8}$", r"^\(0\d{2,3}\)"):
        assert phones.str.contains(pattern).sum() > 20, pattern
    assert names.str.contains("[偉麗華紅鳳龍國軍輝鵬飛]").sum() > 20
    assert names.str.contains(r"^[A-Za-z]+ [A-Za-z]+$").sum() > 100 and names.str.contains(r"^[a-z]+$").sum() > 20
    addresses = register["address"].drop_nulls()
    assert addresses.str.contains("[０-９]").sum() > 100
    assert addresses.str.contains("^[^省市]*路").sum() > 100 and addresses.str.contains("省").sum() > 100
    assert addresses.str.contains("号楼").sum() > 100 and addresses.str.contains("栋").sum() > 100
    id_lengths = register["id_number"].drop_nulls().str.len_chars().value_counts()
    assert set(id_lengths["id_number"].to_list()) == {15, 18}
    assert register["id_number"].null_count() > register.height * 0.1
