"""SparkEngine against PolarsEngine on the same Delta tables: dtypes, MERGE semantics, commit metadata, narwhals."""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest
from deltalake import DeltaTable

from medlake.config import Settings, SparkSettings, settings
from medlake.engine import get_engine
from medlake.engine.dbt_spark_profile import dbt_spark_output, dbt_spark_profile
from medlake.engine.polars_engine import PolarsEngine
from medlake.engine.spark_engine import SparkEngine, SparkWriteError, commit_metadata_from_commit_info
from medlake.engine.spark_session import (
    DELTA_JVM_VERSION,
    delta_maven_coordinates,
    get_spark,
    ivy_home,
    session_conf,
)
from medlake.errors import ConfigurationError, MissingBackendError, TableNotFoundError

pytestmark = pytest.mark.spark

SCHEMA = {
    "institution_code": pl.String,
    "setl_id": pl.String,
    "visits": pl.Int64,
    "setl_date": pl.Date,
    "updated_at": pl.Datetime("us"),
    "total": pl.Decimal(18, 4),
}


def _frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


BASE = _frame([
    ("H1", "S1", 1, dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 8, 0, 0, 123456), Decimal("10.1234")),
    ("H1", "S2", 2, dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 8, 0), Decimal("20.0000")),
    ("H1", "S3", 3, None, dt.datetime(2024, 1, 3, 8, 0), None),
])
# S1 newer → updated; S2 older → kept; S3 same version → updated (>=); S4 new → inserted
INCREMENT = _frame([
    ("H1", "S1", 11, dt.date(2024, 2, 1), dt.datetime(2024, 2, 1, 9, 0), Decimal("11.0000")),
    ("H1", "S2", 22, dt.date(2023, 1, 2), dt.datetime(2023, 1, 2, 8, 0), Decimal("-1.0000")),
    ("H1", "S3", 33, dt.date(2024, 1, 3), dt.datetime(2024, 1, 3, 8, 0), Decimal("0.0001")),
    ("H2", "S4", 4, dt.date(2024, 2, 4), dt.datetime(2024, 2, 4, 23, 59, 59, 999999), Decimal("99999999999999.9999")),
])
KEYS = ("institution_code", "setl_id")


@pytest.fixture(scope="session")
def spark_engine(tmp_path_factory: pytest.TempPathFactory) -> SparkEngine:
    cfg = Settings(home=tmp_path_factory.mktemp("spark_home"))
    return SparkEngine(get_spark(cfg), cfg)


@pytest.fixture()
def polars_engine() -> PolarsEngine:
    return PolarsEngine()


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(KEYS)


def _read(engine: SparkEngine | PolarsEngine, path: Path) -> pl.DataFrame:
    return _sorted(pl.from_arrow(engine.to_arrow(engine.read(str(path)))))  # type: ignore[arg-type]


def test_session_is_configured_once(spark_engine: SparkEngine) -> None:
    spark = spark_engine.spark
    assert get_spark() is spark
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.timestampType") == "TIMESTAMP_NTZ"
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    assert "DeltaSparkSessionExtension" in spark.conf.get("spark.sql.extensions")
    pin = json.loads((ivy_home() / "medlake-jars.json").read_text())
    assert pin["packages"] == delta_maven_coordinates()
    assert any(Path(j).name.startswith("io.delta_delta-spark_") for j in pin["jars"])
    assert not any("hadoop-client" in j for j in pin["jars"])  # pyspark's own hadoop is not shadowed


def test_delta_jar_matches_pyspark_and_pip_delta() -> None:
    from importlib.metadata import version

    import pyspark

    (coordinate,) = delta_maven_coordinates()
    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    assert coordinate == f"io.delta:delta-spark_{spark_minor}_2.13:{DELTA_JVM_VERSION}"
    assert version("delta-spark").split(".")[:2] == DELTA_JVM_VERSION.split(".")[:2]


def test_extra_conf_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDLAKE_SPARK_MASTER", "spark://master:7077")
    monkeypatch.setenv("MEDLAKE_SPARK_CONF", "spark.sql.shuffle.partitions=64, spark.hadoop.fs.s3a.endpoint=http://s3:9000")
    monkeypatch.setenv("MEDLAKE_HOME", str(tmp_path))
    conf = session_conf(settings())
    assert conf["spark.master"] == "spark://master:7077"
    assert conf["spark.sql.shuffle.partitions"] == "64"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://s3:9000"
    assert conf["spark.ui.enabled"] == "true"
    monkeypatch.setenv("MEDLAKE_SPARK_CONF", "spark.sql.shuffle.partitions")
    with pytest.raises(ConfigurationError, match=r"shuffle\.partitions"):
        session_conf(settings())


def test_missing_pyspark_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(MissingBackendError, match=r"medlake\[spark\]"):
        delta_maven_coordinates()


def test_get_engine_returns_lazy_spark_engine() -> None:
    engine = get_engine("spark")
    assert isinstance(engine, SparkEngine) and engine.name == "spark"


@pytest.mark.parametrize("writer_name", ["spark", "polars"])
def test_tables_round_trip_between_engines(
    writer_name: str, spark_engine: SparkEngine, polars_engine: PolarsEngine, tmp_path: Path
) -> None:
    writer, reader = (spark_engine, polars_engine) if writer_name == "spark" else (polars_engine, spark_engine)
    path = tmp_path / "settlement"
    writer.append(writer.from_arrow(BASE.to_arrow()), str(path))
    for engine in (reader, writer):
        back = _read(engine, path)
        assert back.schema == BASE.schema, engine.name
        assert back.equals(_sorted(BASE)), engine.name
        assert engine.row_count(str(path)) == 3
        assert engine.version(str(path)) == 0
    assert dict(spark_engine.read(str(path)).collect_schema()) == dict(polars_engine.read(str(path)).collect_schema())


def test_merge_semantics_match_polars(
    spark_engine: SparkEngine, polars_engine: PolarsEngine, tmp_path: Path
) -> None:
    results, tables = {}, {}
    for engine in (spark_engine, polars_engine):
        path = str(tmp_path / engine.name)
        engine.overwrite(engine.from_arrow(BASE.to_arrow()), path)
        results[engine.name] = engine.merge(
            engine.from_arrow(INCREMENT.to_arrow()), path, keys=KEYS, version_column="updated_at"
        )
        tables[engine.name] = _read(engine, Path(path))
    assert tables["spark"].equals(tables["polars"])
    assert tables["spark"].get_column("visits").to_list() == [11, 2, 33, 4]
    for name, result in results.items():
        assert (result.version, result.rows_written, result.rows_inserted, result.rows_updated) == (1, 4, 1, 2), name


def test_merge_into_missing_table_creates_it(spark_engine: SparkEngine, tmp_path: Path) -> None:
    path = str(tmp_path / "new")
    result = spark_engine.merge(spark_engine.from_arrow(BASE.to_arrow()), path, keys=KEYS)
    assert (result.version, result.rows_inserted) == (0, 3)
    assert spark_engine.row_count(path) == 3


@pytest.mark.parametrize("order", [("polars", "spark"), ("spark", "polars")])
def test_table_written_by_one_engine_is_merged_by_the_other(
    order: tuple[str, str], spark_engine: SparkEngine, polars_engine: PolarsEngine, tmp_path: Path
) -> None:
    engines = {"spark": spark_engine, "polars": polars_engine}
    creator, merger = engines[order[0]], engines[order[1]]
    path = str(tmp_path / "settlement")
    creator.append(creator.from_arrow(BASE.to_arrow()), path)
    result = merger.merge(merger.from_arrow(INCREMENT.to_arrow()), path, keys=KEYS, version_column="updated_at")
    assert (result.rows_inserted, result.rows_updated) == (1, 2)
    again = creator.merge(creator.from_arrow(INCREMENT.head(1).to_arrow()), path, keys=KEYS, version_column="updated_at")
    assert again.rows_updated == 1
    assert _read(spark_engine, Path(path)).equals(_read(polars_engine, Path(path)))
    assert _read(polars_engine, Path(path)).schema == BASE.schema


def test_commit_metadata_written_by_spark(spark_engine: SparkEngine, tmp_path: Path) -> None:
    path = str(tmp_path / "wm")
    spark_engine.append(spark_engine.from_arrow(BASE.to_arrow()), path, metadata={"watermark": "2024-01-03"})
    assert spark_engine.commit_metadata(path)["watermark"] == "2024-01-03"
    spark_engine.merge(spark_engine.from_arrow(INCREMENT.to_arrow()), path, keys=KEYS,
                       metadata={"watermark": "2024-02-04", "batch": "批次1"})
    found = spark_engine.commit_metadata(path)
    assert (found["watermark"], found["batch"], found["operation"]) == ("2024-02-04", "批次1", "MERGE")
    assert spark_engine.spark.conf.get("spark.databricks.delta.commitInfo.userMetadata", None) in (None, "")
    spark_engine.append(spark_engine.from_arrow(BASE.head(0).to_arrow()), path)
    assert "watermark" not in spark_engine.commit_metadata(path)
    # delta-rs sees the same commit through the shared decoder
    assert commit_metadata_from_commit_info(DeltaTable(path).history(2)[1])["watermark"] == "2024-02-04"


def test_commit_metadata_written_by_delta_rs(
    spark_engine: SparkEngine, polars_engine: PolarsEngine, tmp_path: Path
) -> None:
    path = str(tmp_path / "wm")
    polars_engine.append(polars_engine.from_arrow(BASE.to_arrow()), path, metadata={"watermark": "w1"})
    assert spark_engine.commit_metadata(path)["watermark"] == "w1"
    assert polars_engine.commit_metadata(path)["watermark"] == "w1"


def test_polars_engine_reads_spark_watermark(
    spark_engine: SparkEngine, polars_engine: PolarsEngine, tmp_path: Path
) -> None:
    path = str(tmp_path / "wm")
    spark_engine.append(spark_engine.from_arrow(BASE.to_arrow()), path, metadata={"watermark": "w2"})
    assert polars_engine.commit_metadata(path).get("watermark") == "w2"


def test_commit_info_decoder_keeps_non_json_user_metadata() -> None:
    assert commit_metadata_from_commit_info({"userMetadata": "free text", "n": 1}) == {"userMetadata": "free text"}
    assert commit_metadata_from_commit_info({"userMetadata": '{"a": "1", "b": 2}', "op": "WRITE"}) == {
        "op": "WRITE", "a": "1"}


def test_duplicate_source_keys_are_refused(spark_engine: SparkEngine, tmp_path: Path) -> None:
    path = str(tmp_path / "dup")
    spark_engine.append(spark_engine.from_arrow(BASE.to_arrow()), path)
    twice = pl.concat([INCREMENT.head(1), INCREMENT.head(1)])
    with pytest.raises(SparkWriteError, match=r"MERGE into .*dup"):
        spark_engine.merge(spark_engine.from_arrow(twice.to_arrow()), path, keys=KEYS)


def test_missing_table(spark_engine: SparkEngine, tmp_path: Path) -> None:
    path = str(tmp_path / "absent")
    assert not spark_engine.exists(path)
    assert (spark_engine.version(path), spark_engine.row_count(path), spark_engine.commit_metadata(path)) == (None, 0, {})
    with pytest.raises(TableNotFoundError, match="absent"):
        spark_engine.read(path)


RAW = pl.DataFrame({
    "id": [" a ", "b", "c", "c"],
    "n": ["1", "2", "3", "4"],
    "ts": ["2024-01-02 03:04:05", "2024-02-03 00:00:00", None, "2024-03-04 05:06:07"],
    "g": ["x", "y", "x", "x"],
    "amt": ["1.5", "2.25", "3", "4"],
})
LOOKUP = pl.DataFrame({"g": ["x", "y"], "label": ["X", "Y"]})

NARWHALS_OPERATIONS = {
    "strip_chars": lambda f, o: f.with_columns(nw.col("id").str.strip_chars()),
    "cast_int64": lambda f, o: f.with_columns(nw.col("n").cast(nw.Int64)),
    "cast_decimal": lambda f, o: f.with_columns(nw.col("amt").cast(nw.Decimal(18, 4))),
    "to_datetime": lambda f, o: f.with_columns(nw.col("ts").str.to_datetime("%Y-%m-%d %H:%M:%S")),
    "to_date": lambda f, o: f.with_columns(nw.col("ts").str.slice(0, 10).str.to_date("%Y-%m-%d")),
    "when_then": lambda f, o: f.with_columns(
        nw.when(nw.col("g") == "x").then(nw.lit("1")).otherwise(nw.lit("2")).alias("w")),
    "filter": lambda f, o: f.filter(nw.col("g") == "x"),
    "join": lambda f, o: f.join(o, on="g", how="left"),
    "anti_join": lambda f, o: f.join(o.filter(nw.col("g") == "x"), on="g", how="anti"),
    "group_by": lambda f, o: f.group_by("g").agg(nw.len().cast(nw.Int64).alias("c"), nw.col("id").max()),
    "unique": lambda f, o: f.select("g").unique(),
    "is_in": lambda f, o: f.filter(nw.col("g").is_in(["x"])),
    "concat_str": lambda f, o: f.with_columns(nw.concat_str([nw.col("g"), nw.lit("-"), nw.col("n")]).alias("c")),
    "is_duplicated": lambda f, o: f.filter(nw.col("g").is_duplicated()),
}


@pytest.mark.parametrize("operation", sorted(NARWHALS_OPERATIONS))
def test_narwhals_operation_gives_same_rows_and_dtypes(
    operation: str, spark_engine: SparkEngine, polars_engine: PolarsEngine
) -> None:
    outputs = {}
    for engine in (polars_engine, spark_engine):
        out = NARWHALS_OPERATIONS[operation](engine.from_arrow(RAW.to_arrow()), engine.from_arrow(LOOKUP.to_arrow()))
        outputs[engine.name] = (dict(out.collect_schema()), pl.from_arrow(engine.to_arrow(out)))
    assert outputs["spark"][0] == outputs["polars"][0]
    polars_rows, spark_rows = outputs["polars"][1], outputs["spark"][1]
    assert spark_rows.sort(pl.all()).equals(polars_rows.sort(pl.all()))


@pytest.mark.parametrize("expression", [
    nw.col("id").cast(nw.Int64),
    nw.col("g").str.to_datetime("%Y-%m-%d %H:%M:%S"),
])
def test_untypable_values_raise_on_both_engines(
    expression: nw.Expr, spark_engine: SparkEngine, polars_engine: PolarsEngine
) -> None:
    from pyspark.errors import PySparkException

    # each engine raises its own type; ANSI mode makes Spark raise instead of returning NULL
    for engine, error in ((polars_engine, pl.exceptions.InvalidOperationError), (spark_engine, PySparkException)):
        with pytest.raises(error):
            engine.to_arrow(engine.from_arrow(RAW.to_arrow()).with_columns(expression))


def test_counts_differ_in_dtype_between_engines(spark_engine: SparkEngine, polars_engine: PolarsEngine) -> None:
    """Documented difference: cast counts to Int64 before writing (polars UInt32, Spark Int64)."""
    dtypes = {
        e.name: e.from_arrow(RAW.to_arrow()).group_by("g").agg(nw.len().alias("c")).collect_schema()["c"]
        for e in (polars_engine, spark_engine)
    }
    assert dtypes == {"polars": nw.UInt32, "spark": nw.Int64}


def test_dbt_spark_session_profile_is_valid_for_dbt_spark(tmp_path: Path) -> None:
    from dbt.adapters.spark.connections import SparkCredentials

    cfg = Settings(home=tmp_path)
    profile = dbt_spark_profile(cfg)
    output = profile["medlake"]["outputs"]["spark"]
    params = output["server_side_parameters"]
    assert params["spark.sql.timestampType"] == "TIMESTAMP_NTZ"
    assert "io.delta" in (params.get("spark.jars") or params["spark.jars.packages"])
    assert f"-Dderby.system.home={tmp_path / 'work' / 'spark-metastore'}" in params["spark.driver.extraJavaOptions"]
    credentials = SparkCredentials.from_dict({k: v for k, v in output.items() if k not in ("type", "threads")})
    assert (credentials.method, credentials.schema) == ("session", "theme")


def test_dbt_spark_cluster_methods_need_a_host(tmp_path: Path) -> None:
    cfg = Settings(home=tmp_path)
    with pytest.raises(ConfigurationError, match="MEDLAKE_SPARK_THRIFT_HOST"):
        dbt_spark_output(cfg, "thrift")
    cfg = replace(cfg, spark=SparkSettings(thrift_host="sts.example"))
    assert dbt_spark_output(cfg, "thrift")["host"] == "sts.example"
    assert dbt_spark_output(cfg, "thrift")["port"] == 10000
    with pytest.raises(ConfigurationError, match="MEDLAKE_SPARK_CLUSTER"):
        dbt_spark_output(cfg, "http")
    cfg = replace(cfg, spark=replace(cfg.spark, cluster="c1", remote="sc://connect:15002"))
    assert "env_var('MEDLAKE_SPARK_TOKEN')" in dbt_spark_output(cfg, "http")["token"]
    assert dbt_spark_output(cfg, "session")["server_side_parameters"] == {"spark.remote": "sc://connect:15002"}
    with pytest.raises(ConfigurationError, match="odbc"):
        dbt_spark_output(cfg, "odbc")
