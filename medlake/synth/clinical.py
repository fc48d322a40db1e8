"""Encounters and what happens in them (diagnoses, orders, lab results), generated on whole arrays.

``schedule_encounters`` draws every encounter of the window at once (cheap numeric columns);
``encounter_rows`` turns the encounters admitted on one day into delivered text rows of the four hospital
tables. Every row carries ``_inst`` (institution code) and ``_day`` (index of the business date on which the
front-end machine delivers it, i.e. the date of its ``updated_at``), so inpatient stays spread over later
batches and an inpatient encounter is delivered twice (at admission without, at discharge with discharge time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from medlake.reference import Institution, departments, icd10, institution_catalogue, lab_tests
from medlake.reference.institutions import ENCOUNTER_STYLES
from medlake.synth.config import SynthConfig
from medlake.synth.population import Population
from medlake.synth.text import datetime_text, fixed_point_text

__all__ = [
    "ENCOUNTER_TYPES",
    "ClinicalRows",
    "encounter_rows",
    "hospital_catalogues",
    "schedule_encounters",
    "window_start_us",
]

ENCOUNTER_TYPES = ("outpatient", "emergency", "inpatient")
_TYPE_P = (0.82, 0.08, 0.10)
_MIN = 60_000_000  # microseconds per minute
_DAY = 24 * 60 * _MIN
_FIXED_SERVICES = {  # national codes of the fees every encounter carries
    "outpatient": "110200001",
    "emergency": "110200005",
    "bed": "120100001",
    "ward_round": "110300001",
    "nursing": "120200004",
}


@dataclass(frozen=True)
class ClinicalRows:
    """Text rows of one admission day; ``encounter_totals`` (enc_idx, total_cents) feeds the settlements."""

    tables: dict[str, pl.DataFrame]
    encounter_totals: pl.DataFrame


def window_start_us(config: SynthConfig) -> int:
    """Midnight of the first business date as naive wall-clock microseconds since 1970-01-01."""
    return (config.start_date - date(1970, 1, 1)).days * _DAY


def _us_to_datetime(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Datetime("us"))


def _encounter_id(frame: pl.DataFrame, hospitals: list[Institution]) -> pl.Series:
    style = np.array([h.id_style for h in hospitals])[frame["inst_idx"].to_numpy()]
    tail = pl.Series([h.code[-2:] for h in hospitals]).gather(frame["inst_idx"].to_numpy())
    prefix = frame["etype"].replace_strict({"outpatient": "MZ", "emergency": "JZ", "inpatient": "ZY"})
    f = pl.DataFrame(
        {"ymd": frame["ymd"], "seq": frame["seq"].cast(pl.Utf8), "style": style, "tail": tail, "prefix": prefix}
    )
    ymd, seq = pl.col("ymd"), pl.col("seq")
    return f.select(
        pl.when(pl.col("style") == 0)
        .then(pl.concat_str(ymd, seq.str.zfill(6)))
        .when(pl.col("style") == 1)
        .then(pl.concat_str(pl.col("prefix"), ymd, seq.str.zfill(5)))
        .otherwise(pl.concat_str(pl.lit("E"), pl.col("tail"), ymd.str.slice(2), seq.str.zfill(6)))
    ).to_series()


def schedule_encounters(
    config: SynthConfig, population: Population, hospitals: list[Institution], rng: np.random.Generator
) -> pl.DataFrame:
    """All encounters of the window, sorted by admission: ids, type, department, times (µs), LOS."""
    regs = population.registrations
    e = config.total_encounters
    w = regs["reg_weight"].to_numpy()
    reg_idx = rng.choice(len(w), size=e, p=w / w.sum())
    weekday = np.array([(config.start_date.toordinal() + d) % 7 for d in range(config.days)])  # 5,6 = Sat, Sun
    day_w = np.where(weekday >= 5, 0.6, 1.0)
    day = rng.choice(config.days, size=e, p=day_w / day_w.sum())
    etype_idx = rng.choice(3, size=e, p=_TYPE_P)
    minute = np.select(
        [etype_idx == 0, etype_idx == 1],
        [rng.integers(8 * 60, 17 * 60, e), rng.integers(0, 24 * 60, e)],
        rng.integers(8 * 60, 20 * 60, e),
    )
    admit = window_start_us(config) + day * _DAY + minute * _MIN + rng.integers(0, 60, e) * 1_000_000
    los_days = np.clip(np.rint(rng.lognormal(np.log(6.0), 0.6, e)), 1, 60).astype(np.int64)
    discharge = np.select(
        [etype_idx == 1, etype_idx == 2],
        [
            admit + rng.integers(60, 8 * 60, e) * _MIN,
            (admit // _DAY + los_days) * _DAY + rng.integers(9 * 60, 16 * 60, e) * _MIN,
        ],
        -1,
    )
    dept = departments()
    dept_idx = np.empty(e, dtype=np.int64)
    for t, name in enumerate(ENCOUNTER_TYPES):
        pool = np.flatnonzero(dept["encounter_type"].to_numpy() == name)
        mask = etype_idx == t
        pw = dept["weight"].to_numpy()[pool]
        dept_idx[mask] = pool[rng.choice(len(pool), size=int(mask.sum()), p=pw / pw.sum())]
    frame = pl.DataFrame(
        {
            "reg_idx": reg_idx,
            "inst_idx": regs["inst_idx"].to_numpy()[reg_idx],
            "day": day,
            "etype": pl.Series(np.array(ENCOUNTER_TYPES)[etype_idx]),
            "admit_us": admit,
            "discharge_us": pl.Series(discharge).replace(-1, None),
            "los_days": np.where(etype_idx == 2, los_days, 0),
            "dept_idx": dept_idx,
            "doctor": rng.integers(1, 400, e),
        }
    ).sort("day", "inst_idx", "admit_us")
    frame = frame.with_columns(
        ymd=_us_to_datetime(pl.col("admit_us")).dt.strftime("%Y%m%d"),
        seq=pl.int_range(1, pl.len() + 1).over("day", "inst_idx"),
        enc_idx=pl.int_range(pl.len()),
    )
    return frame.with_columns(
        encounter_id=_encounter_id(frame, hospitals),
        patient_id=regs["patient_id"].gather(frame["reg_idx"]),
        person_idx=regs["person_idx"].gather(frame["reg_idx"]),
        institution_code=pl.Series([h.code for h in hospitals]).gather(frame["inst_idx"]),
        dept_code=dept["dept_code"].gather(frame["dept_idx"]),
        dept_name=dept["dept_name"].gather(frame["dept_idx"]),
    ).drop("ymd", "seq")


def _deliver_day(updated: pl.Expr, start_us: int) -> pl.Expr:
    return ((updated - start_us) // _DAY).alias("_day")


def _encounter_table(
    enc: pl.DataFrame, hospitals: list[Institution], rng: np.random.Generator, start_us: int
) -> pl.DataFrame:
    n = enc.height
    styles = [h.encounter_style for h in hospitals]
    same_day = (pl.col("discharge_us") // _DAY) == (pl.col("admit_us") // _DAY)
    base = enc.with_columns(
        _u1=pl.Series(rng.integers(1, 30, n)) * _MIN + pl.col("admit_us"),
        _u2=pl.Series(rng.integers(10, 120, n)) * _MIN + pl.col("discharge_us"),
        _style=pl.Series(styles).gather(enc["inst_idx"]),
    )
    first = base.with_columns(
        _discharge=pl.when(same_day).then(pl.col("discharge_us")),
        _updated=pl.when(same_day).then(pl.max_horizontal("_u1", "_u2")).otherwise(pl.col("_u1")),
    )
    second = base.filter(pl.col("discharge_us").is_not_null() & ~same_day).with_columns(
        _discharge=pl.col("discharge_us"), _updated=pl.col("_u2")
    )
    rows = pl.concat([first, second])
    type_text = pl.col("etype")
    for style, mapping in ENCOUNTER_STYLES.items():
        type_text = (
            pl.when(pl.col("_style") == style).then(pl.col("etype").replace_strict(mapping)).otherwise(type_text)
        )
    return rows.select(
        "encounter_id",
        "patient_id",
        type_text.alias("encounter_type"),
        "dept_code",
        "dept_name",
        datetime_text(_us_to_datetime(pl.col("admit_us"))).alias("admit_time"),
        datetime_text(_us_to_datetime(pl.col("_discharge"))).alias("discharge_time"),
        pl.concat_str(pl.lit("YS"), pl.col("doctor").cast(pl.Utf8).str.zfill(5)).alias("doctor_id"),
        datetime_text(_us_to_datetime(pl.col("_updated"))).alias("updated_at"),
        pl.col("institution_code").alias("_inst"),
        _deliver_day(pl.col("_updated"), start_us),
    )


def _diagnosis_table(enc: pl.DataFrame, rng: np.random.Generator, start_us: int) -> pl.DataFrame:
    icd = icd10()
    count = rng.choice([1, 2, 3, 4], size=enc.height, p=[0.5, 0.3, 0.14, 0.06])
    count = np.where(enc["etype"].to_numpy() == "inpatient", np.minimum(count + 1, 4), count)
    idx = np.repeat(np.arange(enc.height), count)
    m = len(idx)
    w = icd["weight"].to_numpy()
    code_idx = rng.choice(icd.height, size=m, p=w / w.sum())
    rows = (
        enc[idx]
        .select("encounter_id", "admit_us", "institution_code")
        .with_columns(
            diag_seq=pl.int_range(1, pl.len() + 1).over("encounter_id"),
            diag_code=icd["code"].gather(code_idx),
            diag_name=icd["name"].gather(code_idx),
            _t=pl.col("admit_us") + pl.Series(rng.integers(5, 60, m)) * _MIN,
        )
        .with_columns(_updated=pl.col("_t") + pl.Series(rng.integers(0, 10, m)) * _MIN)
    )
    return rows.select(
        "encounter_id",
        pl.col("diag_seq").cast(pl.Utf8),
        "diag_code",
        "diag_name",
        pl.when(pl.col("diag_seq") == 1).then(pl.lit("1")).otherwise(pl.lit("2")).alias("diag_type"),
        datetime_text(_us_to_datetime(pl.col("_t"))).alias("diag_time"),
        datetime_text(_us_to_datetime(pl.col("_updated"))).alias("updated_at"),
        pl.col("institution_code").alias("_inst"),
        _deliver_day(pl.col("_updated"), start_us),
    )


def hospital_catalogues(hospitals: list[Institution]) -> pl.DataFrame:
    """Every hospital's item list with local code/name and price in cents, keyed by (inst_idx, item_idx)."""
    parts = []
    for i, h in enumerate(hospitals):
        level_factor = 100 if h.level.startswith("三级") else 90
        cat = (
            institution_catalogue(h.code)
            .with_row_index("item_idx")
            .with_columns(
                inst_idx=pl.lit(i, pl.Int64),
                item_idx=pl.col("item_idx").cast(pl.Int64),
                price_cents=(pl.col("price") * 100).cast(pl.Int64),
            )
        )
        parts.append(
            cat.with_columns(
                price_cents=pl.when(pl.col("category") == "service")
                .then(pl.col("price_cents") * level_factor // 100)
                .otherwise(pl.col("price_cents"))
            ).select("inst_idx", "item_idx", "local_code", "local_name", "category", "national_code", "price_cents")
        )
    return pl.concat(parts)


def _order_table(
    enc: pl.DataFrame, catalogue: pl.DataFrame, rng: np.random.Generator, start_us: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    etype = enc["etype"].to_numpy()
    los = enc["los_days"].to_numpy()
    inpatient = etype == "inpatient"
    n_fixed = np.where(inpatient, 3, 1)
    n_free = np.where(
        inpatient,
        np.minimum(rng.poisson(3 + 2 * los), 60),
        np.where(etype == "emergency", rng.poisson(4.0, len(etype)), rng.poisson(2.5, len(etype))),
    )
    count = n_fixed + n_free
    idx = np.repeat(np.arange(enc.height), count)
    m = len(idx)
    pos = np.arange(m) - np.repeat(np.cumsum(count) - count, count)  # 0-based position within the encounter
    items = catalogue.filter(pl.col("inst_idx") == 0)
    code_to_idx = dict(zip(items["national_code"].to_list(), items["item_idx"].to_list(), strict=True))
    is_drug = (items["category"] == "drug").to_numpy()
    drug_pool, svc_pool = np.flatnonzero(is_drug), np.flatnonzero(~is_drug)
    e_type = etype[idx]
    e_in = inpatient[idx]
    fixed_item = np.select(
        [e_in & (pos == 0), e_in & (pos == 1), e_in & (pos == 2), e_type == "emergency"],
        [code_to_idx[_FIXED_SERVICES[k]] for k in ("bed", "ward_round", "nursing", "emergency")],
        code_to_idx[_FIXED_SERVICES["outpatient"]],
    )
    free_drug = rng.random(m) < 0.7
    free_item = np.where(
        free_drug, drug_pool[rng.integers(0, len(drug_pool), m)], svc_pool[rng.integers(0, len(svc_pool), m)]
    )
    fixed = pos < n_fixed[idx]
    item_idx = np.where(fixed, fixed_item, free_item)
    span = np.where(e_in, np.maximum(los[idx], 1) * 24 * 60 - 60, 90)
    offset_min = np.where(fixed, rng.integers(1, 10, m), rng.integers(5, 1 + np.maximum(span, 6)))
    qty = np.where(
        fixed & e_in,
        np.maximum(los[idx], 1),
        np.where(is_drug[item_idx], rng.integers(1, np.where(e_in, 8, 4)), rng.integers(1, 3, m)),
    )
    rows = (
        enc[idx]
        .select("enc_idx", "encounter_id", "admit_us", "institution_code", "inst_idx")
        .with_columns(
            item_idx=pl.Series(item_idx, dtype=pl.Int64),
            qty=pl.Series(qty, dtype=pl.Int64),
            _seq=pl.Series(pos + 1),
            _t=pl.col("admit_us") + pl.Series(offset_min) * _MIN,
        )
    )
    rows = rows.join(catalogue, on=["inst_idx", "item_idx"], how="left", maintain_order="left").with_columns(
        amount_cents=pl.col("qty") * pl.col("price_cents"),
        _updated=pl.col("_t") + pl.Series(rng.integers(0, 30, m)) * _MIN,
    )
    totals = rows.group_by("enc_idx", maintain_order=True).agg(total_cents=pl.col("amount_cents").sum())
    table = rows.select(
        pl.concat_str("encounter_id", pl.lit("-"), pl.col("_seq").cast(pl.Utf8).str.zfill(3)).alias("order_id"),
        "encounter_id",
        "category",
        pl.col("local_code").alias("local_item_code"),
        pl.col("local_name").alias("item_name"),
        pl.col("qty").cast(pl.Utf8).alias("quantity"),
        fixed_point_text(pl.col("price_cents")).alias("unit_price"),
        fixed_point_text(pl.col("amount_cents")).alias("amount"),
        datetime_text(_us_to_datetime(pl.col("_t"))).alias("order_time"),
        datetime_text(_us_to_datetime(pl.col("_updated"))).alias("updated_at"),
        pl.col("institution_code").alias("_inst"),
        _deliver_day(pl.col("_updated"), start_us),
    ).rename({"category": "item_category"})
    return table, totals


def _lab_table(enc: pl.DataFrame, rng: np.random.Generator, start_us: int) -> pl.DataFrame:
    tests = lab_tests().with_row_index("test_idx")
    panels = tests["panel"].unique(maintain_order=True).to_list()
    panel_w = np.array([4.0 if p == "血常规" else 1.0 for p in panels])
    etype = enc["etype"].to_numpy()
    n_panels = np.select(
        [etype == "outpatient", etype == "emergency"],
        [
            (rng.random(len(etype)) < 0.25).astype(np.int64),
            (rng.random(len(etype)) < 0.6) * rng.integers(1, 3, len(etype)),
        ],
        rng.integers(1, 4, len(etype)),
    )
    idx = np.repeat(np.arange(enc.height), n_panels)
    if len(idx) == 0:
        return pl.DataFrame()
    chosen = pl.DataFrame(
        {
            "row": idx,
            "panel": pl.Series(panels).gather(rng.choice(len(panels), size=len(idx), p=panel_w / panel_w.sum())),
            "_off": rng.integers(30, 240, len(idx))
            + np.where(
                etype[idx] == "inpatient", rng.integers(0, 24 * 60, len(idx)) * (enc["los_days"].to_numpy()[idx] > 1), 0
            ),
        }
    ).unique(subset=["row", "panel"], keep="first", maintain_order=True)
    rows = chosen.join(tests, on="panel", how="inner", maintain_order="left")
    m = rows.height
    low, high = rows["ref_low"].to_numpy(), rows["ref_high"].to_numpy()
    width = high - low
    centre = np.where(low > 0, (low + high) / 2, high * 0.4)
    value = rng.normal(centre, width / 5)
    abnormal = rng.random(m) < 0.15
    value = np.where(
        abnormal,
        np.where(rng.random(m) < 0.5, low - width * rng.uniform(0.1, 0.6, m), high + width * rng.uniform(0.1, 2.0, m)),
        value,
    )
    value = np.maximum(value, 0.0)
    scale = rows["decimals"].to_numpy()
    e = enc[rows["row"].to_numpy()].select("encounter_id", "admit_us", "institution_code")
    out = e.with_columns(
        _seq=pl.int_range(1, pl.len() + 1).over("encounter_id"),
        _t=pl.col("admit_us") + pl.Series(rows["_off"].to_numpy()) * _MIN,
        test_code=rows["test_code"],
        test_name=rows["name"],
        unit=rows["unit"],
        _scale=pl.Series(scale),
        _value=pl.Series(np.rint(value * 10.0**scale).astype(np.int64)),
        _low=pl.Series(np.rint(low * 10.0**scale).astype(np.int64)),
        _high=pl.Series(np.rint(high * 10.0**scale).astype(np.int64)),
    ).with_columns(_updated=pl.col("_t") + pl.Series(rng.integers(1, 20, m)) * _MIN)
    scales = sorted(set(scale.tolist()))

    def scaled(column: str) -> pl.Expr:
        expr = fixed_point_text(pl.col(column), scales[0])
        for sc in scales[1:]:
            expr = pl.when(pl.col("_scale") == sc).then(fixed_point_text(pl.col(column), sc)).otherwise(expr)
        return expr

    return out.select(
        pl.concat_str("encounter_id", pl.lit("L"), pl.col("_seq").cast(pl.Utf8).str.zfill(3)).alias("result_id"),
        "encounter_id",
        "test_code",
        "test_name",
        scaled("_value").alias("result_value"),
        "unit",
        scaled("_low").alias("ref_low"),
        scaled("_high").alias("ref_high"),
        datetime_text(_us_to_datetime(pl.col("_t"))).alias("report_time"),
        datetime_text(_us_to_datetime(pl.col("_updated"))).alias("updated_at"),
        pl.col("institution_code").alias("_inst"),
        _deliver_day(pl.col("_updated"), start_us),
    )


def encounter_rows(
    enc: pl.DataFrame,
    config: SynthConfig,
    hospitals: list[Institution],
    catalogue: pl.DataFrame,
    rng: np.random.Generator,
) -> ClinicalRows:
    """Delivered text rows (all four hospital tables) for the encounters in ``enc``."""
    start_us = window_start_us(config)
    orders, totals = _order_table(enc, catalogue, rng, start_us)
    tables = {
        "encounter": _encounter_table(enc, hospitals, rng, start_us),
        "diagnosis": _diagnosis_table(enc, rng, start_us),
        "order_item": orders,
        "lab_result": _lab_table(enc, rng, start_us),
    }
    return ClinicalRows(tables=tables, encounter_totals=totals)
