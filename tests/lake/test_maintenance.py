"""Table maintenance: compaction, Z-order, VACUUM inside the time-travel window, checkpoints, CLI and Dagster job."""

from __future__ import annotations

import json
from pathlib import Path

import narwhals as nw
import polars as pl
import pyarrow as pa
import pytest
import typer
from deltalake import DeltaTable
from typer.testing import CliRunner

from medlake.config import Settings
from medlake.engine.polars_engine import PolarsEngine
from medlake.errors import TableNotFoundError
from medlake.lake.dwd import WATERMARK_KEY
from medlake.lake.maintenance import MaintenanceTarget, lake_tables, maintain_table, zorder_columns
from medlake.lake.maintenance_cli import maintain_command
from medlake.resources import resources_for

DAY_MS = 86_400_000


def _rows(day: int, n: int = 4) -> pl.DataFrame:
    return pl.DataFrame({
        "setl_id": [f"S{day:03d}{i:02d}" for i in range(n)],
        "psn_no": [f"P{(day * 7 + i) % 5}" for i in range(n)],
        "fund_paid": [float(day * 100 + i) for i in range(n)],
        "_key_block": [f"B{day % 2}"] * n,
    })


def _append_days(engine: PolarsEngine, path: str, days: range, *, partitioned: bool = False) -> None:
    for day in days:
        frame = nw.from_native(_rows(day).lazy())
        if partitioned and not engine.exists(path):
            engine.merge(frame, path, keys=("setl_id",), partition_by=("_key_block",),
                         metadata={WATERMARK_KEY: str(day)})
        else:
            engine.append(frame, path, metadata={WATERMARK_KEY: str(day)})


def _files(path: str) -> list[str]:
    return sorted(pa.table(DeltaTable(path).get_add_actions(flatten=True)).column("path").to_pylist())


def _content(path: str, version: int | None = None) -> pl.DataFrame:
    table = DeltaTable(path, version=version)
    return pl.from_arrow(table.to_pyarrow_table()).sort("setl_id")  # type: ignore[union-attr]


def _age_commits(path: str, versions: range, days: int) -> None:
    """Make commits ``versions`` look ``days`` older (commit, add and remove timestamps), as if written back then."""
    for version in versions:
        log = Path(path) / "_delta_log" / f"{version:020d}.json"
        actions = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        for action in actions:
            for kind, stamp in (("commitInfo", "timestamp"), ("add", "modificationTime"),
                                ("remove", "deletionTimestamp")):
                if kind in action and stamp in action[kind]:
                    action[kind][stamp] -= days * DAY_MS
        log.write_text("".join(json.dumps(a) + "\n" for a in actions))


@pytest.fixture
def engine() -> PolarsEngine:
    return PolarsEngine()


def test_zorder_keys_come_from_the_specs() -> None:
    assert zorder_columns("dwd", "settlement") == ("setl_id",)
    assert zorder_columns("dwd", "encounter") == ("encounter_id", "patient_id")
    assert zorder_columns("dwd", "diagnosis") == ("encounter_id",)  # diag_seq (int) is no lookup key
    assert zorder_columns("dwd", "master_patient_index") == ("master_id",)
    assert zorder_columns("theme", "settlements") == ()  # compaction only


def test_compaction_leaves_one_file_with_the_same_rows_and_watermark(engine: PolarsEngine, tmp_path: Path) -> None:
    path = str(tmp_path / "lake" / "theme" / "settlements")
    _append_days(engine, path, range(6))
    before = _content(path)
    assert engine.table_stats(path).files == 6

    report = maintain_table(engine, Settings(home=tmp_path), MaintenanceTarget("theme", "settlements", path))

    assert (report.files_before, report.files_after) == (6, 1)
    assert report.version_before == 5 and report.version_after is not None and report.version_after > 5
    assert report.files_vacuumed == 0  # every removed file is younger than the 7-day window
    assert _content(path).equals(before)
    assert engine.commit_metadata(path)[WATERMARK_KEY] == "5"  # the DWD watermark survives maintenance
    assert _content(path, version=2).height == 12  # time travel inside the window still reads


def test_zorder_rewrites_only_crowded_partitions_and_keeps_content(engine: PolarsEngine, tmp_path: Path) -> None:
    path = str(tmp_path / "settlement")
    _append_days(engine, path, range(5), partitioned=True)  # B0: days 0, 2, 4; B1: days 1, 3
    engine.append(nw.from_native(_rows(9).with_columns(pl.lit("B9").alias("_key_block")).lazy()), path)
    lonely = [f for f in _files(path) if f.startswith("_key_block=B9/")]
    before = _content(path)

    engine.optimize(path, zorder=("setl_id",), metadata={WATERMARK_KEY: "9"})

    files = _files(path)
    assert sorted(f.split("/")[0] for f in files) == ["_key_block=B0", "_key_block=B1", "_key_block=B9"]
    assert [f for f in files if f.startswith("_key_block=B9/")] == lonely  # a one-file partition is not rewritten
    assert _content(path).equals(before)
    history = DeltaTable(path).history(2)
    assert [h["operation"] for h in history] == ["OPTIMIZE", "OPTIMIZE"]  # one Z-order per crowded partition
    assert all(h[WATERMARK_KEY] == "9" for h in history)


def test_vacuum_keeps_every_file_a_version_inside_the_window_reads(engine: PolarsEngine, tmp_path: Path) -> None:
    path = str(tmp_path / "lake" / "dwd" / "settlement")
    _append_days(engine, path, range(3))  # versions 0-2, three files
    old_files = set(_files(path))
    engine.overwrite(nw.from_native(_content(path).lazy()), path)  # version 3 replaces them with one file
    _age_commits(path, range(4), days=3)  # versions 0-3 were written three days ago
    _append_days(engine, path, range(3, 5))  # versions 4-5, today
    version_4 = _content(path, version=4)
    target = MaintenanceTarget("dwd", "settlement", path, ("setl_id",))
    one_day = Settings(home=tmp_path, time_travel_days=1)

    # with the retention check on, the table's own 7-day delta.deletedFileRetentionDuration still applies
    assert maintain_table(engine, one_day, target, dry_run=True).vacuumed == []
    dry = maintain_table(engine, one_day, target, dry_run=True, enforce_retention_duration=False)
    assert {Path(f).name for f in dry.vacuumed} == {Path(f).name for f in old_files}
    assert engine.table_stats(path).version == 5 and all((Path(path) / f).exists() for f in old_files)

    done = maintain_table(engine, one_day, target, enforce_retention_duration=False)

    assert {Path(f).name for f in done.vacuumed} == {Path(f).name for f in old_files}
    assert not any((Path(path) / f).exists() for f in old_files)
    assert done.files_after == 1
    # version 4 (inside the window) reads files that the compaction just removed: they are all still there
    assert _content(path, version=4).equals(version_4)
    assert _content(path).equals(_content(path, version=5))


def test_checkpoint_and_log_retention_follow_the_window(engine: PolarsEngine, tmp_path: Path) -> None:
    path = str(tmp_path / "lake" / "dwd" / "settlement")
    _append_days(engine, path, range(3))
    forty_days = Settings(home=tmp_path, time_travel_days=40)

    report = maintain_table(engine, forty_days, MaintenanceTarget("dwd", "settlement", path))

    log = Path(path) / "_delta_log"
    assert (log / f"{report.checkpoint_version:020d}.checkpoint.parquet").exists()
    assert json.loads((log / "_last_checkpoint").read_text())["version"] == report.checkpoint_version
    table = DeltaTable(path)
    assert table.metadata().configuration["delta.logRetentionDuration"] == "interval 960 hours"  # 40 d > 30 d
    assert engine.commit_metadata(path)[WATERMARK_KEY] == "2"
    assert _content(path, version=0).height == 4


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("maintain")(maintain_command)
    return app


def _small_lake(engine: PolarsEngine, settings: Settings) -> dict[str, str]:
    paths = {name: str(settings.lake / name) for name in ("ods/settlement", "dwd/settlement")}
    for path in paths.values():
        _append_days(engine, path, range(3))
    return paths


def _log_listing(path: str) -> list[str]:
    return sorted(p.name for p in (Path(path) / "_delta_log").iterdir())


def test_cli_dry_run_json_changes_nothing(engine: PolarsEngine, lake_settings: Settings) -> None:
    paths = _small_lake(engine, lake_settings)
    logs = {name: _log_listing(path) for name, path in paths.items()}

    result = CliRunner().invoke(_cli(), ["maintain", "--dry-run", "--json"])

    assert result.exit_code == 0, result.output
    reports = json.loads(result.output)
    assert [(r["table"], r["dry_run"], r["optimize"], r["files_before"], r["files_after"]) for r in reports] == [
        ("dwd/settlement", True, True, 3, None), ("ods/settlement", True, False, 3, None)]  # ODS: load order kept
    assert reports[0]["zorder"] == ["setl_id"] and reports[0]["retention_hours"] == 168
    assert {name: _log_listing(path) for name, path in paths.items()} == logs

    one = CliRunner().invoke(_cli(), ["maintain", "--table", "dwd/settlement"])
    assert one.exit_code == 0, one.output
    assert "dwd/settlement" in one.output and "files 3 -> 1" in one.output and "ods/settlement" not in one.output
    assert engine.table_stats(paths["ods/settlement"]).files == 3
    missing = CliRunner().invoke(_cli(), ["maintain", "--table", "dwd/nothing"])
    assert missing.exit_code == 1 and "dwd/nothing" in missing.output


def test_tables_are_found_below_layers_and_unknown_ones_are_a_medlake_error(
    engine: PolarsEngine, lake_settings: Settings
) -> None:
    _append_days(engine, str(lake_settings.lake / "governance" / "hc_empi" / "master_patient_index"), range(1))
    _append_days(engine, str(lake_settings.lake / "dwd" / "settlement"), range(1))
    found = {t.table: (t.zorder, t.optimize) for t in lake_tables(lake_settings)}
    assert found == {"dwd/settlement": (("setl_id",), True),
                     "governance/hc_empi/master_patient_index": (("master_id",), True)}
    with pytest.raises(TableNotFoundError, match="theme/x"):
        lake_tables(lake_settings, ["dwd/settlement", "theme/x"])


@pytest.mark.slow  # importing the definitions parses the dbt manifest and the check contracts
def test_job_and_schedule_are_wired_and_the_job_compacts_a_lake(
    engine: PolarsEngine, lake_settings: Settings
) -> None:
    from dagster import DagsterInstance, DefaultScheduleStatus

    from medlake.definitions import defs

    schedule = defs.resolve_schedule_def("table_maintenance_daily")
    assert schedule.job_name == "table_maintenance" and schedule.cron_schedule == "30 3 * * *"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    paths = _small_lake(engine, lake_settings)

    result = defs.resolve_job_def("table_maintenance").execute_in_process(
        instance=DagsterInstance.ephemeral(), resources=resources_for(lake_settings))

    assert result.success and result.output_for_node("maintain_tables") == 2
    assert {name: engine.table_stats(path).files for name, path in paths.items()} == {
        "dwd/settlement": 1, "ods/settlement": 3}  # ODS is vacuumed and checkpointed, not compacted
    assert all((Path(path) / "_delta_log" / "_last_checkpoint").exists() for path in paths.values())
    observed = {tuple(e.asset_observation_data.asset_observation.asset_key.path)  # type: ignore[union-attr]
                for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"}
    assert observed == {("ods", "settlement"), ("dwd", "settlement")}


@pytest.mark.spark
def test_spark_engine_optimizes_vacuums_and_checkpoints(tmp_path: Path) -> None:
    from medlake.engine.spark_engine import SparkEngine
    from medlake.engine.spark_session import get_spark

    settings = Settings(home=tmp_path, engine="spark")
    spark_engine, polars_engine = SparkEngine(get_spark(settings), settings), PolarsEngine()
    path = str(settings.lake / "dwd" / "settlement")
    _append_days(polars_engine, path, range(4), partitioned=True)
    before = _content(path)

    report = maintain_table(spark_engine, settings, MaintenanceTarget("dwd", "settlement", path, ("setl_id",)))

    assert (report.files_before, report.files_after) == (4, 2)  # one Z-ordered file per partition
    assert report.files_vacuumed == 0
    assert _content(path).equals(before)
    assert spark_engine.commit_metadata(path)[WATERMARK_KEY] == "3"
    assert (Path(path) / "_delta_log" / f"{report.checkpoint_version:020d}.checkpoint.parquet").exists()
    assert _content(path, version=1).height == 8
