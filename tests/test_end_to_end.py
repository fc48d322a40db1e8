"""End to end: synthetic deliveries → every asset materialized in-process → real values checked against an
independent recomputation from the landing files (plain csv/json parsing, none of the pipeline's code)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal, InvalidOperation

import polars as pl
import pytest
from dagster import DagsterInstance, materialize

from medlake.config import MASK_SALT, Settings
from medlake.lake.manifest import read_manifest
from medlake.resources import resources_for
from medlake.synth import SynthConfig, generate

pytestmark = [pytest.mark.slow]

_TYPES = {"outpatient": "outpatient", "门诊": "outpatient", "mz": "outpatient", "emergency": "emergency",
          "急诊": "emergency", "jz": "emergency", "inpatient": "inpatient", "住院": "inpatient", "zy": "inpatient"}


def _rows(settings: Settings, table: str):  # type: ignore[no-untyped-def]
    """Every well-formed delivered row of ``table`` as dicts, in delivery order, with its institution."""
    for folder in sorted((m.parent for m in settings.landing.glob("*/*/manifest.json")),
                         key=lambda p: (p.name, p.parent.name)):
        manifest = read_manifest(folder)
        for entry in manifest.files:
            if entry.table != table:
                continue
            raw = (folder / entry.file).read_bytes()
            lines = []
            for chunk in raw.split(b"\n"):
                try:
                    lines.append(chunk.decode(entry.encoding))
                except UnicodeDecodeError:
                    continue
            if entry.format == "csv":
                reader = csv.reader(io.StringIO("\n".join(lines)))
                header = next(reader)
                for values in reader:
                    if len(values) == len(header):
                        yield manifest.institution, dict(zip(header, values, strict=True))
            else:
                for line in lines:
                    if line.strip():
                        try:
                            yield manifest.institution, json.loads(line)
                        except json.JSONDecodeError:
                            continue


def _when(text: str | None) -> datetime | None:
    text = (text or "").strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y%m%d%H%M%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _latest(rows, key, order):  # type: ignore[no-untyped-def]
    best: dict = {}
    for institution, row in rows:
        k = key(institution, row)
        if k is None:
            continue
        if k not in best or order(row) >= order(best[k][1]):
            best[k] = (institution, row)
    return best


def _expected_visits(settings: Settings) -> Counter:
    def key(institution: str, row: dict) -> tuple | None:
        ident = (row.get("encounter_id") or "").strip()
        admit = row.get("admit_time")
        if not ident:  # an empty business key is refused at landing
            return None
        if (admit or "").strip() and _when(admit) is None:  # required datetime that does not parse: refused
            return None
        updated = (row.get("updated_at") or "").strip()
        if updated and _when(updated) is None:  # required datetime that does not parse: refused
            return None
        return institution, ident

    latest = _latest(_rows(settings, "encounter"), key, lambda r: _when(r.get("updated_at")) or datetime.min)
    visits: Counter = Counter()
    for (institution, _), (_, row) in latest.items():
        admit = _when(row.get("admit_time"))
        kind = (row.get("encounter_type") or "").strip()
        visits[(institution, admit.date() if admit else None, _TYPES.get(kind.lower(), kind) or None)] += 1
    return visits


def _decimal(text: str | None) -> Decimal | None:
    try:
        return Decimal((text or "").strip())
    except InvalidOperation:
        return None


def _expected_fund(settings: Settings) -> dict:
    typed_required = ("setl_time", "total_amount", "fund_paid", "revision", "updated_at")

    def key(institution: str, row: dict) -> str | None:
        ident = (row.get("setl_id") or "").strip()
        for name in typed_required:
            text = (row.get(name) or "").strip()
            parsed = _when(text) if name in ("setl_time", "updated_at") else _decimal(text)
            if text and parsed is None:
                return None
        return ident or None

    latest = _latest(_rows(settings, "settlement"), key, lambda r: int(_decimal(r.get("revision")) or 0))
    fund: dict = defaultdict(Decimal)
    for _, row in latest.values():
        if (row.get("setl_status") or "").strip() == "2":
            continue
        when = _when(row.get("setl_time"))
        fund[(row.get("medins_code") or None, when.strftime("%Y-%m") if when else None)] += (
            _decimal(row.get("fund_paid")) or Decimal(0))
    return dict(fund)


@pytest.fixture(scope="session")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("e2e") / "medlake"
    (home / "dagster").mkdir(parents=True)
    settings = Settings(home=home)
    generate(SynthConfig(patients=400, days=3, institutions=3, seed=11, history_days=3), settings)
    return settings


def _materialize_all(settings: Settings):  # type: ignore[no-untyped-def]
    from medlake.definitions import build_definitions

    defs = build_definitions(settings)  # everything, dbt included, learns the home from these settings alone
    return materialize(
        [*defs.assets, *defs.asset_checks], resources=resources_for(settings, secrets={MASK_SALT: "test-salt"}),
        instance=DagsterInstance.ephemeral(), raise_on_error=False,
    )


@pytest.fixture(scope="session")
def first_run(lake: Settings):  # type: ignore[no-untyped-def]
    return _materialize_all(lake)


def test_every_asset_materializes(first_run) -> None:  # type: ignore[no-untyped-def]
    failures = [e.step_key for e in first_run.all_events if e.is_step_failure]
    assert failures == [] and first_run.success


def test_visits_metric_equals_recomputation_from_landing_files(lake: Settings, first_run) -> None:  # type: ignore[no-untyped-def]
    metric = pl.read_delta(str(lake.table_path("metric", "visits_daily")))
    got = Counter({(r["institution_code"], r["visit_date"], r["encounter_type"]): r["visits"]
                   for r in metric.iter_rows(named=True)})
    expected = _expected_visits(lake)
    assert sum(expected.values()) > 500
    assert got == expected


def test_fund_payout_metric_equals_recomputation_from_landing_files(lake: Settings, first_run) -> None:  # type: ignore[no-untyped-def]
    metric = pl.read_delta(str(lake.table_path("metric", "fund_payout_monthly")))
    got = {(r["institution_code"], r["settlement_month"]): r["fund_paid"] for r in metric.iter_rows(named=True)}
    expected = {k: v for k, v in _expected_fund(lake).items()}
    assert len(got) >= 3
    assert {k: Decimal(v) for k, v in got.items()} == expected


def test_malformed_lines_are_quarantined_with_their_line(lake: Settings, first_run) -> None:  # type: ignore[no-untyped-def]
    truth = pl.read_parquet(lake.truth / "defects.parquet").filter(pl.col("defect_type") == "malformed_line")
    quarantined = pl.concat(
        [pl.read_delta(str(p)) for p in (lake.lake / "quarantine").glob("ods_*")], how="vertical_relaxed"
    ).filter(pl.col("reason").str.contains("fields, found|not valid"))
    assert quarantined.height == truth.height > 0
    assert quarantined["source_line"].min() > 1


def test_rerun_is_idempotent(lake: Settings, first_run) -> None:  # type: ignore[no-untyped-def]
    tables = [p for layer in ("ods", "dwd", "theme", "metric") for p in sorted((lake.lake / layer).glob("*"))]
    before = {p: pl.read_delta(str(p)).drop("_loaded_at", strict=False).sort(pl.all()).hash_rows().sum()
              for p in tables if not p.name.startswith(("empi_", "golden"))}
    second = _materialize_all(lake)
    assert second.success
    after = {p: pl.read_delta(str(p)).drop("_loaded_at", strict=False).sort(pl.all()).hash_rows().sum()
             for p in before}
    assert after == before


def test_master_patient_index_links_people_registered_at_several_hospitals(lake: Settings, first_run) -> None:  # type: ignore[no-untyped-def]
    mpi = pl.read_delta(str(lake.table_path("dwd", "master_patient_index")))
    persons = pl.read_parquet(lake.truth / "persons.parquet").with_columns(
        record_id=pl.col("institution_code") + ":" + pl.col("patient_id"))
    joined = mpi.join(persons, on="record_id")
    assert joined.height > 300
    # Records of one true person should mostly share one master ID.
    purity = joined.group_by("person_id").agg(pl.col("master_id").n_unique().alias("masters"))
    assert (purity["masters"] == 1).mean() > 0.97
