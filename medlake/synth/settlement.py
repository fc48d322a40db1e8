"""Insurance settlements (结算清单) delivered by the insurance bureau, with later revisions.

A settlement is made for most encounters of insured persons: total = sum of the encounter's order amounts,
split into fund_paid / self_paid by a plausible reimbursement ratio. ``history_days`` of earlier settlements
arrive in the first batch. Some settlements are revised in later daily increments: a refund (setl_status '2') or
a re-settlement with new amounts (setl_status '3'), always with a higher ``revision`` and a later ``updated_at``
— the upsert-heavy case. Rows carry ``_inst`` (the bureau) and ``_day`` like the hospital tables.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from medlake.reference import INSURANCE_BUREAU, Institution
from medlake.synth.config import SynthConfig
from medlake.synth.population import Population
from medlake.synth.text import datetime_text, fixed_point_text

__all__ = ["history_settlements", "revisions", "settlement_text", "window_settlements"]

_MIN = 60_000_000
_DAY = 24 * 60 * _MIN
_RATIO = {"outpatient": (0.45, 0.65), "inpatient": (0.65, 0.88)}


def _split(rng: np.random.Generator, total: np.ndarray, setl_type: np.ndarray) -> np.ndarray:
    inpatient = setl_type == "inpatient"
    lo = np.where(inpatient, _RATIO["inpatient"][0], _RATIO["outpatient"][0])
    hi = np.where(inpatient, _RATIO["inpatient"][1], _RATIO["outpatient"][1])
    return np.rint(total * rng.uniform(lo, hi)).astype(np.int64)


def _base(frame: pl.DataFrame, population: Population, rng: np.random.Generator) -> pl.DataFrame:
    """Typed settlement rows from (setl_id, person_idx, medins_code, encounter_id, setl_type, setl_us, begin_us,
    end_us, total_cents)."""
    persons = population.persons
    p = frame["person_idx"].to_numpy()
    fund = _split(rng, frame["total_cents"].to_numpy(), frame["setl_type"].to_numpy())
    return frame.with_columns(
        psn_no=persons["psn_no"].gather(p),
        psn_name=persons["name"].gather(p),
        id_number=persons["id_number"].gather(p),
        fund_cents=pl.Series(fund),
        setl_status=pl.lit("1"),
        revision=pl.lit(1, pl.Int64),
        updated_us=pl.col("setl_us"),
    ).with_columns(self_cents=pl.col("total_cents") - pl.col("fund_cents"))


def window_settlements(
    enc: pl.DataFrame, totals: pl.DataFrame, config: SynthConfig, population: Population, rng: np.random.Generator
) -> pl.DataFrame:
    """Typed settlements of the encounters in ``enc`` (insured persons, most encounters)."""
    insured = population.persons["insured"].to_numpy()[enc["person_idx"].to_numpy()]
    chosen = enc.filter(pl.Series(insured & (rng.random(enc.height) < config.settled_share)))
    n = chosen.height
    end_us = pl.coalesce("discharge_us", "admit_us")
    frame = chosen.join(totals, on="enc_idx", how="left", maintain_order="left").select(
        pl.concat_str(pl.lit("3301"), pl.col("enc_idx").cast(pl.Utf8).str.zfill(12)).alias("setl_id"),
        "person_idx",
        pl.col("institution_code").alias("medins_code"),
        "encounter_id",
        pl.when(pl.col("etype") == "inpatient")
        .then(pl.lit("inpatient"))
        .otherwise(pl.lit("outpatient"))
        .alias("setl_type"),
        (end_us + pl.Series(rng.integers(10, 180, n)) * _MIN).alias("setl_us"),
        pl.col("admit_us").alias("begin_us"),
        end_us.alias("end_us"),
        pl.col("total_cents").fill_null(0),
    )
    return _base(frame, population, rng)


def history_settlements(
    config: SynthConfig,
    population: Population,
    hospitals: list[Institution],
    start_us: int,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Settlements of ``history_days`` before the window (their encounters predate the hospital deliveries)."""
    if config.history_days == 0:
        return pl.DataFrame()
    per_day = config.total_encounters / config.days * config.insured_share * config.settled_share
    n = round(per_day * config.history_days)
    regs = population.registrations
    insured = population.persons["insured"].to_numpy()[regs["person_idx"].to_numpy()]
    w = regs["reg_weight"].to_numpy() * insured
    reg_idx = rng.choice(regs.height, size=n, p=w / w.sum())
    day = rng.integers(-config.history_days, 0, n)
    inpatient = rng.random(n) < 0.12
    los = np.where(inpatient, np.clip(np.rint(rng.lognormal(np.log(6.0), 0.6, n)), 1, 60), 0).astype(np.int64)
    admit = start_us + (day - los) * _DAY + rng.integers(8 * 60, 17 * 60, n) * _MIN
    end = start_us + day * _DAY + rng.integers(9 * 60, 16 * 60, n) * _MIN
    end = np.maximum(end, admit + 30 * _MIN)
    total = np.where(inpatient, rng.lognormal(np.log(9000.0), 0.7, n), rng.lognormal(np.log(150.0), 0.9, n))
    inst_tail = pl.Series([h.code[-2:] for h in hospitals]).gather(regs["inst_idx"].to_numpy()[reg_idx])
    frame = pl.DataFrame(
        {
            "setl_id": pl.Series(np.arange(n)).cast(pl.Utf8).str.zfill(11).str.replace(r"^", "3301H"),
            "person_idx": regs["person_idx"].to_numpy()[reg_idx],
            "medins_code": regs["institution_code"].gather(reg_idx),
            "encounter_id": pl.DataFrame(
                {
                    "t": inst_tail,
                    "d": pl.Series(admit).cast(pl.Datetime("us")).dt.strftime("%Y%m%d"),
                    "n": pl.Series(np.arange(n)).cast(pl.Utf8).str.zfill(7),
                }
            )
            .select(pl.concat_str(pl.lit("H"), "t", "d", "n"))
            .to_series(),
            "setl_type": np.where(inpatient, "inpatient", "outpatient"),
            "setl_us": end + rng.integers(10, 180, n) * _MIN,
            "begin_us": admit,
            "end_us": end,
            "total_cents": np.rint(total * 100).astype(np.int64),
        }
    )
    return _base(frame, population, rng)


def revisions(
    base: pl.DataFrame, share: float, config: SynthConfig, start_us: int, rng: np.random.Generator, *, history: bool
) -> pl.DataFrame:
    """Later versions of some settlements: refund ('2', same amounts) or re-settlement ('3', new amounts);
    a fifth of the revised ones are revised a second time. Rows beyond the window are dropped."""
    if base.height == 0:
        return base
    picked = base.filter(pl.Series(rng.random(base.height) < share))
    parts = []
    current = picked
    for rev in (2, 3):
        n = current.height
        if n == 0:
            break
        if history and rev == 2:
            day = rng.integers(0, config.days, n)
        else:
            day = (current["updated_us"].to_numpy() - start_us) // _DAY + rng.geometric(0.3, n)
        refund = rng.random(n) < 0.4
        factor = rng.uniform(0.85, 1.05, n)
        new_total = np.where(
            refund,
            current["total_cents"].to_numpy(),
            np.rint(current["total_cents"].to_numpy() * factor).astype(np.int64),
        )
        new_fund = np.where(
            refund, current["fund_cents"].to_numpy(), _split(rng, new_total, current["setl_type"].to_numpy())
        )
        updated = start_us + day * _DAY + rng.integers(8 * 60, 20 * 60, n) * _MIN
        nxt = current.with_columns(
            total_cents=pl.Series(new_total),
            fund_cents=pl.Series(new_fund),
            setl_status=pl.Series(np.where(refund, "2", "3")),
            revision=pl.lit(rev, pl.Int64),
            updated_us=pl.Series(updated),
        ).with_columns(self_cents=pl.col("total_cents") - pl.col("fund_cents"))
        nxt = nxt.filter(pl.col("updated_us") < start_us + config.days * _DAY)
        parts.append(nxt)
        current = nxt.filter(pl.Series(rng.random(nxt.height) < 0.2) & (pl.col("setl_status") == "3"))
    return pl.concat(parts) if parts else base.clear()


def _ts(column: str) -> pl.Expr:
    return datetime_text(pl.col(column).cast(pl.Datetime("us")))


def _date(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Datetime("us")).dt.strftime("%Y-%m-%d")


def settlement_text(typed: pl.DataFrame, start_us: int, *, day: int | None = None) -> pl.DataFrame:
    """Settlement rows as delivered text; ``_day`` from updated_at unless forced (history → first batch)."""
    deliver = pl.lit(day, pl.Int64) if day is not None else (pl.col("updated_us") - start_us) // _DAY
    return typed.select(
        "setl_id",
        "psn_no",
        "psn_name",
        "id_number",
        "medins_code",
        "encounter_id",
        "setl_type",
        _ts("setl_us").alias("setl_time"),
        _date("begin_us").alias("begin_date"),
        _date("end_us").alias("end_date"),
        fixed_point_text(pl.col("total_cents")).alias("total_amount"),
        fixed_point_text(pl.col("fund_cents")).alias("fund_paid"),
        fixed_point_text(pl.col("self_cents")).alias("self_paid"),
        "setl_status",
        pl.col("revision").cast(pl.Utf8),
        _ts("updated_us").alias("updated_at"),
        pl.lit(INSURANCE_BUREAU.code).alias("_inst"),
        deliver.alias("_day"),
    )
