"""The engine capabilities operators use give the same answers on both engines: SQL over frames, salted hashing,
check sessions, Splink backends and state tables."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import narwhals as nw
import polars as pl
import pyarrow as pa
import pytest

from medlake.config import Settings
from medlake.engine.base import Engine, SplinkOptions
from medlake.engine.polars_engine import PolarsEngine

if TYPE_CHECKING:
    from medlake.engine.spark_engine import SparkEngine

PATIENTS = pa.table({"patient_id": ["P1", "P2", None], "age": [30, 41, 52], "_key_block": ["a", "b", "c"],
                     "_batch_id": ["b1", "b2", "b1"]})


def _rows(engine: Engine, frame: nw.LazyFrame) -> list[dict[str, object]]:
    rows = pl.DataFrame(pl.from_arrow(engine.to_arrow(frame)))
    return rows.sort(rows.columns, nulls_last=True).to_dicts()


def _capabilities(engine: Engine) -> dict[str, object]:
    frame = engine.from_arrow(PATIENTS)
    hashed = engine.hash_columns(frame, ["patient_id"], "pepper")
    queried = engine.sql('SELECT patient_id, age * 2 AS twice FROM main."t" WHERE try_strptime(\'20240131\', '
                         "'%Y%m%d') IS NOT NULL AND age > 35", {"t": frame})
    session = engine.check_session("patients", frame, batch_id="b1", drop=("_key_block",))
    try:
        session.register("lookup", pa.table({"k": ["P1"]}))
        checked = session.execute('SELECT count(*), count(patient_id) FROM main."patients" '
                                  "WHERE patient_id IS NULL OR patient_id IN (SELECT k FROM lookup)")
        columns = sorted(_rows(engine, session.frame('SELECT * FROM main."patients"'))[0])
    finally:
        session.close()
    return {"hashed": _rows(engine, hashed), "queried": _rows(engine, queried), "checked": checked,
            "columns": columns}


def test_polars_engine_capabilities() -> None:
    found = _capabilities(PolarsEngine())
    assert [r["patient_id"] for r in found["hashed"]] == [  # type: ignore[index]
        hashlib.sha256(b"pepperP1").hexdigest(), hashlib.sha256(b"pepperP2").hexdigest(), None]
    assert found["queried"] == [{"patient_id": "P2", "twice": 82}, {"patient_id": None, "twice": 104}]
    assert [r["age"] for r in found["hashed"]] == [30, 41, 52]  # type: ignore[index]
    assert [tuple(r) for r in found["checked"]] == [(2, 1)]  # type: ignore[attr-defined]
    assert found["columns"] == ["_batch_id", "age", "patient_id"]


def test_state_table_appends_upserts_deletes_and_restores(tmp_path: Path) -> None:
    state = PolarsEngine().state_table(str(tmp_path / "state"))
    assert not state.exists() and state.version() is None
    state.append(pa.table({"k": ["a", "b"], "v": [1, 2]}), metadata={"batch": "1"})
    state.upsert(pa.table({"k": ["b", "c"], "v": [20, 3]}), "k", remove=["a"], metadata={"batch": "2"})
    assert sorted(state.read().to_pylist(), key=str) == [{"k": "b", "v": 20}, {"k": "c", "v": 3}]
    state.delete("k", ["c"])
    assert state.read().to_pylist() == [{"k": "b", "v": 20}]
    state.restore(0)
    assert sorted(r["k"] for r in state.read().to_pylist()) == ["a", "b"]
    state.restore(None)
    assert state.read().num_rows == 0 and state.exists()


def test_polars_splink_backend_is_duckdb() -> None:
    backend = PolarsEngine().splink(SplinkOptions(threads=1))
    try:
        assert backend.dialect == "duckdb" and type(backend.db_api).__name__ == "DuckDBAPI"
    finally:
        backend.close()


@pytest.fixture(scope="module")
def spark_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkEngine]:
    from medlake.engine.spark_engine import SparkEngine

    yield SparkEngine(cfg=Settings(home=tmp_path_factory.mktemp("capabilities"), engine="spark"))


@pytest.mark.spark
@pytest.mark.slow
def test_spark_engine_capabilities_equal_polars(spark_engine: SparkEngine) -> None:
    assert _capabilities(spark_engine) == _capabilities(PolarsEngine())
    backend = spark_engine.splink(SplinkOptions())
    try:
        assert backend.dialect == "spark"  # its DuckDB-equal string distances are registered in the engine's session
        on_spark = spark_engine.spark.sql("SELECT jaro_winkler('martha', 'marhta') AS s").toArrow()
        on_duckdb = PolarsEngine().sql("SELECT jaro_winkler_similarity('martha', 'marhta') AS s", {})
        assert on_spark.to_pylist() == PolarsEngine().to_arrow(on_duckdb).to_pylist()
    finally:
        backend.close()
