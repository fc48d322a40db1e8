"""The EMPI on the Spark engine: Splink on SparkAPI gives the DuckDB backend's clusters, and stable master IDs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from medlake.bench.empi import pairwise_quality
from medlake.config import Settings
from medlake.empi import FieldMap, MasterPatientIndex, ModelSettings
from medlake.engine.base import Engine
from medlake.engine.polars_engine import PolarsEngine
from medlake.engine.spark_engine import SparkEngine
from medlake.synth.register import synthetic_register

pytestmark = [pytest.mark.spark, pytest.mark.slow]

FAST = ModelSettings(u_pairs=1e5, em_pairs=1e5)
FIELDS = FieldMap(
    record_id="record_id", name="name", id_number="id_number", birth_date="birth_date", sex="sex_code",
    phone="phone", address="address", region="region_code", source="institution_code", updated_at="updated_at",
)
FIRST, LATER = 300, 120


def _records() -> tuple[pl.DataFrame, pl.DataFrame]:
    reg = synthetic_register(FIRST + LATER, seed=3)
    rid = pl.col("institution_code") + ":" + pl.col("patient_id")
    return reg.records.with_columns(record_id=rid), reg.truth.with_columns(record_id=rid)


def _clusters(assignments: pl.DataFrame) -> set[frozenset[str]]:
    groups = assignments.group_by("master_id").agg("record_id")["record_id"].to_list()
    return {frozenset(g) for g in groups}


def _masters(mpi: MasterPatientIndex) -> dict[str, str]:
    return dict(mpi.assignments().select("record_id", "master_id").iter_rows())


@pytest.fixture(scope="session")
def spark_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("empi-spark-home"), engine="spark")


@pytest.fixture(scope="session")
def spark_engine(spark_settings: Settings) -> SparkEngine:
    return SparkEngine(cfg=spark_settings)


@pytest.fixture(scope="session")
def both(tmp_path_factory: pytest.TempPathFactory, spark_engine: SparkEngine) -> dict[str, tuple[Path, pl.DataFrame]]:
    """The first FIRST records linked once per backend: store folder and assignments."""
    records, _ = _records()
    linked = {}
    engines: dict[str, Engine] = {"polars": PolarsEngine(), "spark": spark_engine}
    for name, engine in engines.items():
        store = tmp_path_factory.mktemp(f"empi-{name}") / "store"
        mpi = MasterPatientIndex(store, model_settings=FAST, engine=engine)
        result = mpi.link(records.head(FIRST), FIELDS, batch_id="b1")
        assert result.trained and result.records_new == FIRST
        linked[name] = (store, result.assignments)
    return linked


def test_spark_backend_links_like_duckdb(both: dict[str, tuple[Path, pl.DataFrame]]) -> None:
    _, truth = _records()
    (duck_store, on_duckdb), (spark_store, on_spark) = both["polars"], both["spark"]
    assert _clusters(on_spark) == _clusters(on_duckdb)
    assert dict(on_spark.select("record_id", "master_id").iter_rows()) == dict(
        on_duckdb.select("record_id", "master_id").iter_rows()
    )
    duck_quality, spark_quality = pairwise_quality(on_duckdb, truth), pairwise_quality(on_spark, truth)
    assert spark_quality["precision"] >= duck_quality["precision"] and spark_quality["recall"] >= duck_quality["recall"]
    assert duck_quality["precision"] > 0.98 and duck_quality["recall"] > 0.9, duck_quality
    # same comparison levels on both (the model JSONs differ only in SQL dialect and estimates)
    duck_model, spark_model = (json.loads(p.store.model_path.read_text()) for p in
                               (MasterPatientIndex(duck_store), MasterPatientIndex(spark_store)))
    assert spark_model["sql_dialect"] == "spark" and duck_model["sql_dialect"] == "duckdb"
    assert [[lv["label_for_charts"] for lv in c["comparison_levels"]] for c in spark_model["comparisons"]] == [
        [lv["label_for_charts"] for lv in c["comparison_levels"]] for c in duck_model["comparisons"]
    ]


def test_spark_incremental_loads_keep_master_ids(both: dict[str, tuple[Path, pl.DataFrame]], tmp_path: Path,
                                                 spark_engine: SparkEngine) -> None:
    records, _ = _records()
    later = records.tail(LATER)
    store = tmp_path / "store"
    shutil.copytree(both["spark"][0], store)
    mpi = MasterPatientIndex(store, model_settings=FAST, engine=spark_engine)
    before = _masters(mpi)
    result = mpi.link(later.head(LATER // 2), FIELDS, batch_id="b2")
    assert not result.trained and result.records_new == LATER // 2
    mpi.link(later.tail(LATER // 2), FIELDS, batch_id="b3")
    after = _masters(mpi)
    merged = dict(
        mpi.store.read("empi_audit").filter(pl.col("event") == "merge").select("other_master_id", "master_id")
        .iter_rows()
    )
    for record, master in before.items():
        assert after[record] == merged.get(master, master)  # unchanged unless its master merged (audited)
    assert len(after) == FIRST + LATER
    again = mpi.link(later, FIELDS, batch_id="b4")  # re-delivery: nothing changes, nothing is scored
    assert again.records_unchanged == LATER and again.new_masters == 0 and _masters(mpi) == after


def test_model_saved_by_duckdb_scores_on_spark(both: dict[str, tuple[Path, pl.DataFrame]], tmp_path: Path,
                                               spark_engine: SparkEngine) -> None:
    """An index built on the polars engine continues on the spark engine (the saved model is ported)."""
    records, _ = _records()
    store = tmp_path / "store"
    shutil.copytree(both["polars"][0], store)
    mpi = MasterPatientIndex(store, model_settings=FAST, engine=spark_engine)
    result = mpi.link(records.tail(LATER), FIELDS, batch_id="b2")
    assert not result.trained and result.records_new == LATER
    shutil.copytree(both["polars"][0], tmp_path / "ref")
    reference = MasterPatientIndex(tmp_path / "ref", model_settings=FAST)
    reference.link(records.tail(LATER), FIELDS, batch_id="b2")
    assert _clusters(mpi.assignments()) == _clusters(reference.assignments())
