"""The generation run: population → encounter schedule → one day at a time: rows, defects, batch files.

Day ``d`` delivers every row whose ``updated_at`` falls on that date: encounters admitted that day plus rows of
earlier admissions that happened since (inpatient orders, discharges, settlements, settlement revisions).
Processing days in order therefore completes each batch before its manifest is written, while memory holds
only one day's rows plus the pending tail of ongoing inpatient stays.
"""

from __future__ import annotations

import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from rich.progress import Progress

from medlake.config import Settings
from medlake.reference import INSURANCE_BUREAU, Institution, institution_catalogue, institutions
from medlake.reference.institutions import SEX_STYLES
from medlake.sources import source
from medlake.synth.clinical import encounter_rows, hospital_catalogues, schedule_encounters, window_start_us
from medlake.synth.config import DefectRates, SynthConfig, SynthReport
from medlake.synth.defects import DEFECT_TRUTH_SCHEMA, inject_defects
from medlake.synth.population import Population, build_population
from medlake.synth.settlement import history_settlements, revisions, settlement_text, window_settlements
from medlake.synth.text import datetime_text
from medlake.synth.writer import write_batch

__all__ = ["HOSPITAL_TABLES", "generate"]

HOSPITAL_TABLES = ("patient", "encounter", "diagnosis", "order_item", "lab_result")
_MIN = 60_000_000
_DAY = 24 * 60 * _MIN


def _rng(config: SynthConfig, *stream: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, *stream])


def _patient_rows(
    population: Population,
    schedule: pl.DataFrame,
    config: SynthConfig,
    hospitals: list[Institution],
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Patient rows: delivered on the day of the first encounter at that hospital (day 0 when none), and for a
    few patients again later with a new phone number (an update the DWD merge must apply)."""
    start_us = window_start_us(config)
    regs = population.registrations.with_row_index("reg_idx").with_columns(pl.col("reg_idx").cast(pl.Int64))
    first = schedule.group_by("reg_idx").agg(pl.col("admit_us").min().alias("_first"))
    regs = regs.join(first, on="reg_idx", how="left", maintain_order="left")
    n = regs.height
    before = start_us - pl.Series(rng.integers(1, 3650, n)) * _DAY
    updated = pl.coalesce(pl.col("_first") - pl.Series(rng.integers(1, 60, n)) * _MIN, before)
    sex_text = pl.col("sex_code")
    style = pl.Series([h.sex_style for h in hospitals]).gather(regs["inst_idx"])
    for name, mapping in SEX_STYLES.items():
        sex_text = pl.when(pl.lit(style) == name).then(pl.col("sex_code").replace_strict(mapping)).otherwise(sex_text)
    rows = regs.with_columns(_updated=updated).select(
        "patient_id",
        "name",
        "id_number",
        sex_text.alias("sex_code"),
        "birth_date",
        "phone",
        "region_code",
        "address",
        "_updated",
        pl.col("institution_code").alias("_inst"),
        pl.max_horizontal((pl.col("_updated") - start_us) // _DAY, pl.lit(0)).alias("_day"),
    )
    later = rows.filter(pl.Series(rng.random(n) < config.patient_update_share) & (pl.col("_day") < config.days - 1))
    m = later.height
    if m:
        new_day = later["_day"].to_numpy() + 1 + (rng.random(m) * (config.days - 1 - later["_day"].to_numpy()))
        new_day = new_day.astype(np.int64)
        later = later.with_columns(
            phone=pl.Series(rng.integers(13_000_000_000, 19_999_999_999, m)).cast(pl.Utf8),
            _day=pl.Series(new_day),
            _updated=start_us + pl.Series(new_day) * _DAY + pl.Series(rng.integers(8 * 60, 20 * 60, m)) * _MIN,
        )
        rows = pl.concat([rows, later])
    return rows.with_columns(updated_at=datetime_text(pl.col("_updated").cast(pl.Datetime("us")))).drop("_updated")


def _write_truth(
    truth_dir: Path,
    population: Population,
    hospitals: list[Institution],
    schedule: pl.DataFrame,
    defects: list[pl.DataFrame],
    settlements: list[pl.DataFrame],
) -> None:
    truth_dir.mkdir(parents=True, exist_ok=True)
    regs = population.registrations
    regs.select("institution_code", "patient_id", "person_id").write_parquet(truth_dir / "persons.parquet")
    regs.select("institution_code", "patient_id", "person_id", "primary", "variants").write_parquet(
        truth_dir / "record_variants.parquet"
    )
    population.persons.select(
        "person_id",
        "name",
        "id_number",
        "sex_code",
        "birth_date",
        "phone",
        "region_code",
        "address",
        "insured",
        "psn_no",
    ).write_parquet(truth_dir / "person_master.parquet")
    population.twins.write_parquet(truth_dir / "twins.parquet")
    all_defects = pl.concat(defects).cast(DEFECT_TRUTH_SCHEMA)
    all_defects.sort("business_date", "table", "institution_code", "key", "defect_type", "field").write_parquet(
        truth_dir / "defects.parquet"
    )
    pl.concat([institution_catalogue(h.code).with_columns(institution_code=pl.lit(h.code)) for h in hospitals]).select(
        "institution_code", "local_code", "local_name", "national_code", "national_name", "category", "mapped"
    ).write_parquet(truth_dir / "item_codes.parquet")
    schedule.select(
        "institution_code",
        "encounter_id",
        "patient_id",
        population.persons["person_id"].gather(schedule["person_idx"]).alias("person_id"),
        pl.col("etype").alias("encounter_type"),
        pl.col("admit_us").cast(pl.Datetime("us")).alias("admit_time"),
        pl.col("discharge_us").cast(pl.Datetime("us")).alias("discharge_time"),
        "dept_code",
    ).write_parquet(truth_dir / "encounters.parquet")
    pl.concat(settlements).write_parquet(truth_dir / "settlements.parquet")
    pl.DataFrame(
        [
            {
                "institution_code": h.code,
                "name": h.name,
                "region_code": h.region_code,
                "level": h.level,
                "delivery_format": h.delivery_format,
                "encoding": h.encoding,
                "sex_style": h.sex_style,
                "encounter_style": h.encounter_style,
            }
            for h in [*hospitals, INSURANCE_BUREAU]
        ]
    ).write_parquet(truth_dir / "institutions.parquet")


def _settlement_truth(typed: pl.DataFrame, history: bool) -> pl.DataFrame:
    if typed.height == 0:
        return pl.DataFrame()
    return typed.select(
        "setl_id",
        "medins_code",
        "encounter_id",
        "psn_no",
        "revision",
        "setl_status",
        (pl.col("total_cents") / 100).alias("total_amount"),
        (pl.col("fund_cents") / 100).alias("fund_paid"),
        pl.col("updated_us").cast(pl.Datetime("us")).alias("updated_at"),
        pl.lit(history).alias("history"),
    )


def generate(config: SynthConfig, settings: Settings) -> SynthReport:
    """Generate the landing batches and the truth for ``config`` under ``settings.home``; deterministic per seed."""
    started = time.perf_counter()
    hospitals = institutions(config.institutions)
    rates = config.effective_rates
    start_us = window_start_us(config)
    population = build_population(config, hospitals, _rng(config, 1))
    schedule = schedule_encounters(config, population, hospitals, _rng(config, 2))
    catalogue = hospital_catalogues(hospitals)
    report = SynthReport(landing=str(settings.landing), truth=str(settings.truth))

    pending: dict[str, list[pl.DataFrame]] = {t: [] for t in (*HOSPITAL_TABLES, "settlement")}
    pending["patient"].append(_patient_rows(population, schedule, config, hospitals, _rng(config, 3)))
    history = history_settlements(config, population, hospitals, start_us, _rng(config, 4))
    settlement_truth: list[pl.DataFrame] = []
    if history.height:
        pending["settlement"].append(settlement_text(history, start_us, day=0))
        hist_rev = revisions(history, 2 * config.revision_share, config, start_us, _rng(config, 5), history=True)
        pending["settlement"].append(settlement_text(hist_rev, start_us))
        settlement_truth += [_settlement_truth(history, True), _settlement_truth(hist_rev, True)]

    defect_truth: list[pl.DataFrame] = [pl.DataFrame(schema=DEFECT_TRUTH_SCHEMA)]
    by_day = schedule.partition_by("day", as_dict=True, maintain_order=True)
    with Progress(disable=not config.progress, transient=True) as progress:
        task = progress.add_task("generating batches", total=config.days)
        for d in range(config.days):
            business_date = config.start_date + timedelta(days=d)
            rng = _rng(config, 100, d)
            enc = by_day.get((d,))
            if enc is not None and enc.height:
                clinical = encounter_rows(enc, config, hospitals, catalogue, rng)
                for table, frame in clinical.tables.items():
                    if frame.height:
                        pending[table].append(frame)
                typed = window_settlements(enc, clinical.encounter_totals, config, population, rng)
                revised = revisions(typed, config.revision_share, config, start_us, rng, history=False)
                pending["settlement"] += [settlement_text(typed, start_us), settlement_text(revised, start_us)]
                settlement_truth += [_settlement_truth(typed, False), _settlement_truth(revised, False)]
            todays: dict[str, pl.DataFrame] = {}
            for table, frames in pending.items():
                frames = [f for f in frames if f.height]
                merged = pl.concat(frames) if frames else None
                if merged is None:
                    todays[table] = pl.DataFrame()
                    continue
                merged = merged.filter(pl.col("_day") < config.days)
                pending[table] = [merged.filter(pl.col("_day") > d)]
                done = inject_defects(merged.filter(pl.col("_day") == d), table, rates, rng, business_date)
                todays[table] = done.rows
                defect_truth.append(done.truth)
            _write_day(settings, hospitals, business_date, todays, rates, rng, report, defect_truth)
            progress.advance(task)

    _write_truth(
        settings.truth, population, hospitals, schedule, defect_truth, [s for s in settlement_truth if s.height]
    )
    defects = pl.concat(defect_truth)
    report.defects = dict(defects.group_by("defect_type").len().sort("defect_type").iter_rows())
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _write_day(
    settings: Settings,
    hospitals: list[Institution],
    business_date: date,
    todays: dict[str, pl.DataFrame],
    rates: DefectRates,
    rng: np.random.Generator,
    report: SynthReport,
    defect_truth: list[pl.DataFrame],
) -> None:
    for inst in [*hospitals, INSURANCE_BUREAU]:
        names = HOSPITAL_TABLES if inst.is_hospital else ("settlement",)
        tables = {}
        for t in names:
            frame = todays.get(t)
            tables[t] = frame.filter(pl.col("_inst") == inst.code) if frame is not None and frame.height else None
        folder = settings.landing / inst.code / business_date.isoformat()
        if folder.exists():
            shutil.rmtree(folder)
        written = write_batch(folder, inst, business_date, {t: _or_empty(f, t) for t, f in tables.items()}, rates, rng)
        defect_truth.append(written.truth)
        report.batches += 1
        for f in written.manifest.files:
            report.files += 1
            report.add_rows(f.table, f.rows)


def _or_empty(frame: pl.DataFrame | None, table: str) -> pl.DataFrame:
    if frame is not None:
        return frame
    return pl.DataFrame(schema={c: pl.Utf8 for c in [*source(table).column_names, "_inst"]})
