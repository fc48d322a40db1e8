"""Resources per engine: the dict lookup's rows, and on Spark one dagster-pyspark session shared by the lake."""

from pathlib import Path

import pytest
from dagster import AssetExecutionContext, asset, materialize
from dagster_pyspark import LazyPySparkResource

from medlake.config import Settings
from medlake.engine.polars_engine import PolarsEngine
from medlake.resources import LakeResource, SparkSessionResource, resources_for


def test_polars_row_has_the_lake_and_dbt_on_the_embedded_engine(tmp_path: Path) -> None:
    resources = resources_for(Settings(home=tmp_path))
    assert set(resources) == {"lake", "dbt"}
    lake = resources["lake"]
    assert isinstance(lake, LakeResource) and isinstance(lake.engine, PolarsEngine)
    assert lake.settings.lake == tmp_path / "lake"
    assert resources["dbt"].target == "polars"


def test_spark_row_wires_a_dagster_pyspark_session_into_the_lake(tmp_path: Path) -> None:
    resources = resources_for(Settings(home=tmp_path, engine="spark"))
    assert set(resources) == {"lake", "pyspark", "dbt"}
    assert isinstance(resources["pyspark"], LazyPySparkResource)
    assert resources["lake"].spark is resources["pyspark"] and resources["dbt"].target == "spark"
    assert (tmp_path / "work" / "dbt" / "profile" / "profiles.yml").is_file()


@pytest.mark.spark
@pytest.mark.slow
def test_the_lake_engine_runs_on_the_pyspark_resource_session(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    @asset(required_resource_keys={"lake", "pyspark"})
    def probe(context: AssetExecutionContext) -> None:
        engine = context.resources.lake.engine
        seen["engine"], seen["resource"] = engine.spark, context.resources.pyspark.spark_session
        seen["name"] = engine.name

    current = Settings(home=tmp_path, engine="spark")
    spark = SparkSessionResource(home=str(current.home), spark_config={"spark.sql.shuffle.partitions": "2"})
    lake = LakeResource(home=str(current.home), engine_name="spark", spark=spark)
    assert materialize([probe], resources={"lake": lake, "pyspark": spark}).success
    assert seen["name"] == "spark" and seen["engine"] is seen["resource"]
    assert seen["engine"].conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"  # type: ignore[attr-defined]
