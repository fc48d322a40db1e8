"""Settings read from the environment once, carried whole by the lake resource, secrets bound as Dagster EnvVars."""

from pathlib import Path

import pytest
from dagster import AssetExecutionContext, EnvVar, asset, materialize

from medlake.config import MASK_SALT, LineageSettings, Settings, SparkSettings, settings
from medlake.errors import ConfigurationError
from medlake.resources import LakeResource


def _everything(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home", engine="spark", lake_uri=str(tmp_path / "lake"), max_file_bytes=1 << 20,
        time_travel_days=2.5, dagster_instance=tmp_path / "instance", standards_dir=tmp_path / "standards",
        standards_version="2023.1", checks_dir=tmp_path / "checks", workflows_dir=tmp_path / "workflows",
        spark=SparkSettings(master="spark://m:7077", conf="a=b", thrift_port=10001, dbt_method="thrift"),
        lineage=LineageSettings(url="http://marquez:5000", timeout=1.5), secrets=(MASK_SALT,),
    )


def test_the_environment_is_read_into_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDLAKE_HOME", str(tmp_path))
    monkeypatch.setenv("MEDLAKE_SPARK_MASTER", "spark://m:7077")
    monkeypatch.setenv("MEDLAKE_SPARK_THRIFT_PORT", "10001")
    monkeypatch.setenv("OPENLINEAGE_URL", "http://marquez:5000")
    monkeypatch.setenv("MEDLAKE_LINEAGE_TIMEOUT", "1.5")
    monkeypatch.setenv("MEDLAKE_STANDARDS_VERSION", "2023.1")
    monkeypatch.setenv("MEDLAKE_WORKFLOWS", str(tmp_path / "wf"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "instance"))
    monkeypatch.setenv(MASK_SALT, "pepper")
    current = settings()
    assert (current.spark.master, current.spark.thrift_port) == ("spark://m:7077", 10001)
    assert (current.lineage.url, current.lineage.timeout) == ("http://marquez:5000", 1.5)
    assert (current.standards_version, current.workflows) == ("2023.1", tmp_path / "wf")
    assert current.dagster_home == tmp_path / "instance"
    assert current.secrets == (MASK_SALT,) and "pepper" not in repr(current.to_config())
    monkeypatch.setenv("MEDLAKE_SPARK_THRIFT_PORT", "ten")
    with pytest.raises(ConfigurationError, match="MEDLAKE_SPARK_THRIFT_PORT='ten'"):
        settings()


def test_defaults_without_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEDLAKE_SPARK_MASTER", "OPENLINEAGE_URL", "DAGSTER_HOME", "MEDLAKE_WORKFLOWS", MASK_SALT,
                 "OPENLINEAGE_API_KEY", "PYSPARK_PYTHON"):  # PYSPARK_PYTHON: a Spark test in this worker may have set it
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MEDLAKE_HOME", str(tmp_path))
    current = settings()
    assert current.spark == SparkSettings() and current.lineage == LineageSettings() and current.secrets == ()
    assert current.dagster_home == tmp_path / "dagster"
    assert current.workflows == Path(__file__).resolve().parents[2] / "medlake" / "workflows" / "templates"


def test_settings_round_trip_through_the_lake_resource(tmp_path: Path) -> None:
    current = _everything(tmp_path)
    assert Settings.from_config(current.to_config()) == current
    assert LakeResource.from_settings(current).settings == current
    with pytest.raises(ConfigurationError, match="unknown field"):
        Settings.from_config({"home": str(tmp_path), "homes": "x"})


def test_secrets_are_bound_as_env_vars_and_resolved_when_the_run_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LakeResource.from_settings(Settings(home=tmp_path, secrets=(MASK_SALT,)))
    assert lake.secrets == {MASK_SALT: EnvVar(MASK_SALT)}  # the name, not the value, is in the configuration
    seen: dict[str, str] = {}

    @asset
    def probe(context: AssetExecutionContext, lake: LakeResource) -> None:
        seen["salt"] = lake.secret(MASK_SALT)

    monkeypatch.setenv(MASK_SALT, "pepper")
    assert materialize([probe], resources={"lake": lake}).success
    assert seen["salt"] == "pepper"
    given = LakeResource.from_settings(Settings(home=tmp_path), secrets={MASK_SALT: "salt"})
    assert given.secret(MASK_SALT) == "salt" and given.secret("OPENLINEAGE_API_KEY") == ""
