"""Masking: each method on a patient frame, salt only from the caller (never the environment), vectorized hashing."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest

from medlake.config import Settings
from medlake.engine.polars_engine import PolarsEngine
from medlake.masking import MaskingConfigError, MaskingError, MaskOperator
from medlake.operators.base import OperatorContext

CONFIG = {
    "salt_env": "TEST_MEDLAKE_SALT",
    "columns": {
        "patient_id": "hash",
        "name": "partial",
        "id_number": {"method": "partial", "format": "id_number"},
        "phone": "partial",
        "birth_date": "generalize",
        "region_code": "generalize",
        "address": "drop",
    },
}


def _patients() -> nw.LazyFrame:
    return nw.from_native(pl.LazyFrame({
        "institution_code": ["H33010200001", "H33010200001", "H33010200001"],
        "patient_id": ["P1", "P2", None],
        "name": ["张三", "欧阳娜娜", None],
        "id_number": ["330102198503041234", "11010819900101002X", None],
        "phone": ["13812345678", "123", None],
        "birth_date": [date(1985, 3, 4), date(1990, 1, 1), None],
        "region_code": ["330102", "110108", None],
        "address": ["杭州市西湖区文三路1号", "北京市海淀区", None],
    }))


@pytest.fixture
def ctx(tmp_path: Path) -> OperatorContext:
    return OperatorContext(engine=PolarsEngine(), settings=Settings(home=tmp_path), table="dwd.patient",
                           secrets={"TEST_MEDLAKE_SALT": "pepper"})


def _run(ctx: OperatorContext, config: dict[str, object] = CONFIG) -> pl.DataFrame:
    result = MaskOperator.from_config(config).run(_patients(), ctx)
    assert result.rows_in == result.rows_out == 3
    out = pl.from_arrow(ctx.engine.to_arrow(result.frame))
    assert isinstance(out, pl.DataFrame)
    return out


def test_every_method(ctx: OperatorContext) -> None:
    out = _run(ctx)
    assert out.columns == ["institution_code", "patient_id", "name", "id_number", "phone", "birth_date",
                           "region_code"]
    assert out["patient_id"].to_list() == [hashlib.sha256(b"pepperP1").hexdigest(),
                                           hashlib.sha256(b"pepperP2").hexdigest(), None]
    assert out["name"].to_list() == ["张*", "欧阳*", None]
    assert out["id_number"].to_list() == ["3301021985********", "1101081990********", None]
    assert out["phone"].to_list() == ["138****5678", "****", None]
    assert out["birth_date"].to_list() == [1985, 1990, None]
    assert out["region_code"].to_list() == ["330100", "110100", None]
    assert out["institution_code"].to_list() == ["H33010200001"] * 3


def test_salt_changes_hash(ctx: OperatorContext) -> None:
    first = _run(replace(ctx, secrets={"TEST_MEDLAKE_SALT": "one"}))["patient_id"][0]
    assert _run(replace(ctx, secrets={"TEST_MEDLAKE_SALT": "two"}))["patient_id"][0] != first


def test_default_drop_keeps_only_listed(ctx: OperatorContext) -> None:
    out = _run(ctx, {"default": "drop", "columns": {"institution_code": "keep", "birth_date": "generalize"}})
    assert out.columns == ["institution_code", "birth_date"]


def test_salt_never_literal_and_must_be_set(ctx: OperatorContext, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MaskingConfigError, match="must not be written in YAML"):
        MaskOperator.from_config({"salt": "abc", "columns": {"patient_id": "hash"}})
    with pytest.raises(MaskingConfigError, match="hash needs salt_env"):
        MaskOperator.from_config({"columns": {"patient_id": "hash"}})
    monkeypatch.setenv("TEST_MEDLAKE_SALT", "in-the-environment")  # never read: the caller gives the secret
    with pytest.raises(MaskingError, match="TEST_MEDLAKE_SALT"):
        _run(replace(ctx, secrets={}))


def test_config_errors_name_the_column(ctx: OperatorContext) -> None:
    with pytest.raises(MaskingConfigError, match=r"columns.address: method 'blur'"):
        MaskOperator.from_config({"columns": {"address": "blur"}})
    with pytest.raises(MaskingConfigError, match=r"columns.address: partial needs format"):
        MaskOperator.from_config({"columns": {"address": "partial"}})
    with pytest.raises(MaskingError, match=r"dwd\.patient: mask lists column"):
        _run(ctx, {"columns": {"nickname": "drop"}})
