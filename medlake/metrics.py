"""Indicators computed from subject themes, written once as narwhals expressions (any engine runs them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import narwhals as nw

from medlake.engine.base import DECIMAL

__all__ = ["METRICS", "MetricSpec", "metric"]


@dataclass(frozen=True)
class MetricSpec:
    """An indicator. Besides ``compute`` it declares which source columns feed each output column (lineage):
    a grain column is the same-named source column unless ``derived`` names its sources; ``measures`` maps each
    aggregate to the columns it aggregates (empty for a row count); ``filters`` are the columns rows are kept by."""

    name: str
    label: str
    source: str  # theme table
    description: str
    compute: Callable[[nw.LazyFrame], nw.LazyFrame]
    grain: tuple[str, ...]
    measures: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    derived: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    filters: tuple[str, ...] = ()


def _count(name: str) -> nw.Expr:
    """A row count as Int64 on every engine (polars counts in UInt32, Spark in Int64)."""
    return nw.len().cast(nw.Int64()).alias(name)


def _money(column: str) -> nw.Expr:
    """A sum of a Decimal(18,4) column, kept Decimal(18,4) (the engines widen sums differently)."""
    return nw.col(column).sum().cast(nw.Decimal(*DECIMAL)).alias(column)


def _round_half_up(value: nw.Expr, decimals: int) -> nw.Expr:
    """Round half up, the same on every engine (polars ``round`` rounds half to even, Spark's half up)."""
    scale = 10**decimals
    return ((value * scale + 0.5).floor() / scale).cast(nw.Float64())


def _month(column: str) -> nw.Expr:
    return nw.col(column).dt.to_string("%Y-%m")


def _visits_daily(encounters: nw.LazyFrame) -> nw.LazyFrame:
    return (
        encounters.group_by("institution_code", "visit_date", "encounter_type")
        .agg(_count("visits"))
        .sort("institution_code", "visit_date", "encounter_type")
    )


def _inpatient_los(encounters: nw.LazyFrame) -> nw.LazyFrame:
    stays = encounters.filter(
        (nw.col("encounter_type") == "inpatient") & ~nw.col("length_of_stay_days").is_null()
    ).with_columns(_month("discharge_time").alias("discharge_month"))
    return (
        stays.group_by("institution_code", "discharge_month")
        .agg(
            _count("discharges"),
            nw.col("length_of_stay_days").sum().cast(nw.Int64()).alias("bed_days"),
            _round_half_up(nw.col("length_of_stay_days").mean(), 4).alias("average_length_of_stay_days"),
        )
        .sort("institution_code", "discharge_month")
    )


def _fund_monthly(settlements: nw.LazyFrame) -> nw.LazyFrame:
    paid = settlements.filter(~nw.col("is_refunded"))
    return (
        paid.group_by(nw.col("medins_code").alias("institution_code"), "settlement_month")
        .agg(
            _count("settlements"),
            _money("total_amount"),
            _money("fund_paid"),
            _money("self_paid"),
        )
        .sort("institution_code", "settlement_month")
    )


def _visits_by_sex_age(encounters: nw.LazyFrame) -> nw.LazyFrame:
    age = nw.col("age_at_visit")
    band = (
        nw.when(age.is_null()).then(nw.lit("unknown"))
        .when(age < 15).then(nw.lit("0-14"))
        .when(age < 45).then(nw.lit("15-44"))
        .when(age < 65).then(nw.lit("45-64"))
        .otherwise(nw.lit("65+"))
    )
    return (
        encounters.with_columns(_month("admit_time").alias("visit_month"), band.alias("age_band"),
                                nw.col("sex_code").fill_null("0"))
        .group_by("institution_code", "visit_month", "sex_code", "age_band")
        .agg(_count("visits"))
        .sort("institution_code", "visit_month", "sex_code", "age_band")
    )


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("visits_daily", "每日诊疗人次", "encounters",
               "Visits per institution per day and encounter type.", _visits_daily,
               ("institution_code", "visit_date", "encounter_type"), measures={"visits": ()}),
    MetricSpec("inpatient_length_of_stay", "平均住院日", "encounters",
               "Average inpatient length of stay per institution per discharge month.", _inpatient_los,
               ("institution_code", "discharge_month"),
               measures={"discharges": (), "bed_days": ("length_of_stay_days",),
                         "average_length_of_stay_days": ("length_of_stay_days",)},
               derived={"discharge_month": ("discharge_time",)},
               filters=("encounter_type", "length_of_stay_days")),
    MetricSpec("fund_payout_monthly", "医保基金支出", "settlements",
               "Insurance fund payout and self-pay per institution per month (refunded settlements excluded).",
               _fund_monthly, ("institution_code", "settlement_month"),
               measures={"settlements": (), "total_amount": ("total_amount",), "fund_paid": ("fund_paid",),
                         "self_paid": ("self_paid",)},
               derived={"institution_code": ("medins_code",)}, filters=("is_refunded",)),
    MetricSpec("visits_by_sex_age", "分性别年龄诊疗人次", "encounters",
               "Visits per institution per month by GB/T 2261.1 sex code and age band.", _visits_by_sex_age,
               ("institution_code", "visit_month", "sex_code", "age_band"), measures={"visits": ()},
               derived={"visit_month": ("admit_time",), "sex_code": ("sex_code",), "age_band": ("age_at_visit",)}),
)

_BY_NAME = {m.name: m for m in METRICS}


def metric(name: str) -> MetricSpec:
    return _BY_NAME[name]
