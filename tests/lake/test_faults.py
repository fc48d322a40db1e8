"""Reliability: no fault loses or duplicates data.

* Crash consistency: a loader (tests/lake/faults_loader.py, the library write paths without Dagster) is killed with
  SIGKILL at every registered crash point (``medlake.lake.crashpoints``) and at random times. After each kill every
  Delta table under the lake opens at a committed version, the rerun completes, and every table equals the one an
  uninterrupted run wrote (row count and order-independent content checksum, ``medlake.bench.parity``).
* Concurrency: two loads of the same deliveries at once, and a MERGE racing appends on one table, end with exactly
  the rows of one sequential load (per-table locks, ``medlake.lake.locks``; commit retries in the engine).

The reference lake is built once per module, stage by stage, from a tiny synthetic delivery; each crash case starts
from the reference state before its stage and reruns only that stage.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from medlake.bench.parity import compare_lakes, lake_fingerprints
from medlake.config import Settings
from medlake.engine import get_engine
from medlake.engine.polars_engine import COMMIT_ATTEMPTS, commit_with_retry
from medlake.errors import CommitConflictError, ConfigurationError, LakeBusyError
from medlake.lake.crashpoints import CRASH_POINTS, crash_point
from medlake.lake.locks import table_lock
from medlake.synth import SynthConfig, generate
from tests.lake.faults_loader import STAGES, run_stages

pytestmark = pytest.mark.faults

INPUT = SynthConfig(patients=60, days=2, institutions=2, seed=20261202, defect_rate=10)
ORDER = list(STAGES)  # ods, dwd, empi_first, empi, workflow, dbt
# crash point prefix → the stage that reaches it (EMPI points: the second, incremental batch)
STAGE_OF = {"ods": "ods", "dwd": "dwd", "empi": "empi", "workflow": "workflow", "dbt": "dbt"}
# Append-only logs of events that did happen twice when a step ran twice (a check evaluated again after a crash):
# their rows are facts about runs, not data; every other table must match exactly.
RUN_LOGS = ("quality/check_results",)
LOADER = Path(__file__).resolve().parent / "faults_loader.py"
REPO = LOADER.parents[2]


def _env(crash: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MEDLAKE_CRASH_POINT", "MEDLAKE_LAKE_URI")}
    env["MEDLAKE_MASK_SALT"] = "faults-salt"
    if crash:
        env["MEDLAKE_CRASH_POINT"] = crash
    return env


def _loader(home: Path, stages: list[str], crash: str = "") -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(LOADER), str(home), *stages], env=_env(crash), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _differences(home: Path, reference: Path) -> list[str]:
    return [p for p in compare_lakes(home / "lake", reference / "lake") if not p.startswith(RUN_LOGS)]


def _assert_every_table_opens(home: Path) -> int:
    tables = sorted(log.parent for log in (home / "lake").rglob("_delta_log"))
    for table in tables:
        DeltaTable(str(table)).to_pyarrow_table()  # raises on a torn commit or a missing data file
    return len(tables)


def _stage_of(point: str) -> str:
    return STAGE_OF[point.split(".", 1)[0]]


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("locks"))
    return target


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The home after each stage of an uninterrupted load ("start": the deliveries only)."""
    root = tmp_path_factory.mktemp("faults")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDLAKE_MASK_SALT", "faults-salt")
        patch.delenv("MEDLAKE_CRASH_POINT", raising=False)
        start = root / "start"
        generate(INPUT, Settings(home=start))
        homes = {"start": start}
        previous = start
        for stage in ORDER:
            homes[stage] = _copy(previous, root / stage)
            run_stages(homes[stage], [stage])
            previous = homes[stage]
        yield homes


def test_the_reference_load_reaches_every_write_path(reference: dict[str, Path]) -> None:
    tables = lake_fingerprints(reference["dbt"] / "lake")
    for table in ("quarantine/ods_settlement", "quarantine/dwd_settlement", "dwd/master_patient_index",
                  "dwd/golden_record", "governance/quarantine", "research/hospital_patient_deidentified",
                  "theme/patients_landed"):
        assert tables[table].rows > 0, table
    # the second EMPI batch linked the second institution's patients against the first one's masters
    first = lake_fingerprints(reference["empi_first"] / "lake")["dwd/master_patient_index"].rows
    assert 0 < first < tables["dwd/master_patient_index"].rows == tables["dwd/patient"].rows


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_loader_killed_at_a_crash_point_loses_and_duplicates_nothing(
    point: str, reference: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDLAKE_MASK_SALT", "faults-salt")
    stage = _stage_of(point)
    before = ORDER[ORDER.index(stage) - 1] if ORDER.index(stage) else "start"
    home = _copy(reference[before], tmp_path / "home")
    proc = _loader(home, [stage], crash=point)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, f"{point} was never reached (exit {proc.returncode}):\n{err[-3000:]}"
    assert _assert_every_table_opens(home) >= len(list((reference[before] / "lake").rglob("_delta_log")))
    run_stages(home, [stage])  # the rerun, uninterrupted
    assert _differences(home, reference[stage]) == []


def test_loaders_killed_at_random_times_lose_and_duplicate_nothing(
    reference: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILLs at seeded random delays: a real ``medlake run --select group:ods`` (Dagster, in-process executor),
    then twice the loader running ODS + DWD + the first EMPI batch, each picking up what the previous one left;
    then one uninterrupted run."""
    monkeypatch.setenv("MEDLAKE_MASK_SALT", "faults-salt")
    rng = random.Random(20261202)
    home = _copy(reference["start"], tmp_path / "home")
    (home / "dagster").mkdir()
    stages = ["ods", "dwd", "empi_first"]
    medlake_run = [str(Path(sys.executable).parent / "medlake"), "run", "--select", "group:ods"]
    env = {**_env(), "MEDLAKE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    interrupted = 0
    for kill in range(3):
        proc = (subprocess.Popen(medlake_run, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) if kill == 0 else _loader(home, stages))
        time.sleep(rng.uniform(8.0, 14.0) if kill == 0 else rng.uniform(2.0, 9.0))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=120)
        interrupted += proc.returncode == -signal.SIGKILL
        _assert_every_table_opens(home)
    assert interrupted >= 2  # the delays land inside the load, not after it
    run_stages(home, stages)
    assert _differences(home, reference["empi_first"]) == []


def test_two_loads_of_the_same_deliveries_at_once_load_every_file_once(
    reference: dict[str, Path], tmp_path: Path
) -> None:
    """The reported race: two runs 0 s apart on one MEDLAKE_HOME. The second waits for each table's lock, then finds
    the files in the load log (ODS) and its watermark moved (DWD)."""
    home = _copy(reference["start"], tmp_path / "home")
    runs = [_loader(home, ["ods", "dwd"]) for _ in range(2)]
    for proc in runs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    expected = lake_fingerprints(reference["dwd"] / "lake")
    got = lake_fingerprints(home / "lake")
    assert got["ods/diagnosis"].rows == expected["ods/diagnosis"].rows > 0
    assert _differences(home, reference["dwd"]) == []


_RACE = """
import sys, pyarrow as pa
from medlake.engine import get_engine
engine, path, role = get_engine("polars"), sys.argv[1], sys.argv[2]
for i in range(10):
    if role == "merge":  # update the 20 seeded keys to round i (a read-modify-write of every file)
        rows = pa.table({"id": [f"k{k}" for k in range(20)], "round": [i] * 20, "who": ["merge"] * 20})
        engine.merge(engine.from_arrow(rows), path, keys=("id",))
    else:  # append 5 new keys per round
        rows = pa.table({"id": [f"a{i}-{k}" for k in range(5)], "round": [i] * 5, "who": ["append"] * 5})
        engine.append(engine.from_arrow(rows), path)
"""


def test_a_merge_racing_appends_on_one_table_loses_no_update_and_no_row(tmp_path: Path) -> None:
    """No lock here: the MERGE conflicts with the appends committed under it (delta-rs ``CommitFailedError``) and
    is computed again on the new version until it commits."""
    path = str(tmp_path / "raced")
    engine = get_engine("polars")
    seed = pa.table({"id": [f"k{k}" for k in range(20)], "round": [-1] * 20, "who": ["seed"] * 20})
    engine.append(engine.from_arrow(seed), path)
    racers = [subprocess.Popen([sys.executable, "-c", _RACE, path, role], env=_env(), cwd=REPO, text=True,
                               stderr=subprocess.PIPE) for role in ("merge", "append")]
    for proc in racers:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    rows = DeltaTable(path).to_pyarrow_table().to_pylist()
    merged = {r["id"]: r["round"] for r in rows if r["id"].startswith("k")}
    appended = sorted(r["id"] for r in rows if r["id"].startswith("a"))
    assert len(rows) == 20 + 10 * 5
    assert merged == {f"k{k}": 9 for k in range(20)}  # every key once, at the last round
    assert appended == sorted(f"a{i}-{k}" for i in range(10) for k in range(5))


def test_a_second_holder_of_a_table_lock_waits_and_then_gives_up_clearly(lake_settings: Settings) -> None:
    errors: list[BaseException] = []

    def contender() -> None:
        try:
            with table_lock(lake_settings, "ods/diagnosis", wait=0.2):
                pass
        except LakeBusyError as exc:
            errors.append(exc)

    with table_lock(lake_settings, "ods/diagnosis"), table_lock(lake_settings, "ods/diagnosis"):  # re-entrant
        thread = threading.Thread(target=contender)
        thread.start()
        thread.join()
    assert len(errors) == 1 and "ods/diagnosis" in str(errors[0])
    with table_lock(lake_settings, "ods/diagnosis", wait=0.2):  # released: free again
        assert (lake_settings.locks / "ods.diagnosis.lock").exists()


def test_a_conflicting_commit_is_retried_then_reported_with_the_table() -> None:
    calls: list[int] = []

    def conflicts_twice() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise CommitFailedError("concurrent append")
        return "committed"

    assert commit_with_retry("lake/dwd/patient", conflicts_twice) == "committed" and len(calls) == 3

    def always() -> None:
        calls.append(1)
        raise CommitFailedError("concurrent append")

    calls.clear()
    with pytest.raises(CommitConflictError, match=r"lake/dwd/patient.*8 attempts"):
        commit_with_retry("lake/dwd/patient", always)
    assert len(calls) == COMMIT_ATTEMPTS


def test_an_unregistered_crash_point_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDLAKE_CRASH_POINT", "dwd.merge.after_commit")
    crash_point("ods.append.before_commit")  # armed elsewhere: nothing happens
    with pytest.raises(ConfigurationError, match="not registered"):
        crash_point("ods.apend.before_commit")
