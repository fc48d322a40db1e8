"""The ``transcode`` operator: local drug / service-item / diagnosis codes → national codes, by a join.

Mapping tables are read once per (institution, category) present in the frame, stacked into one small frame and
left-joined on (institution, category, local code) — no per-row function. Unmapped codes go to the review table
with suggestions; the mapping rate per institution is reported in the result's metrics.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import narwhals as nw
import polars as pl

from medlake.operators.base import OperatorContext, OperatorResult, StepStatus
from medlake.transcode.errors import TranscodeConfigError, TranscodeError
from medlake.transcode.mappings import MappingSource, RegistryMappings
from medlake.transcode.review import review_path, write_review

__all__ = ["CATEGORIES", "TranscodeConfig", "TranscodeOperator"]

CATEGORIES = ("drug", "service", "diagnosis")
_INST, _CAT = "_tc_institution", "_tc_category"


@dataclass(frozen=True)
class TranscodeConfig:
    """What a ``transcode`` step says in YAML."""

    column: str
    category: str | None = None
    category_column: str | None = None
    institution_column: str = "institution_code"
    standard_version: str | None = None
    out_column: str = "national_code"
    out_name_column: str | None = None
    name_column: str | None = None  # the local name used to suggest codes (e.g. item_name, diag_name)
    on_unmapped: Literal["keep", "reject"] = "keep"
    warn_below: float = 0.95
    review: bool = True
    suggestions: int = 3

    def __post_init__(self) -> None:
        if (self.category is None) == (self.category_column is None):
            raise TranscodeConfigError("transcode: give exactly one of 'category' or 'category_column'")
        if self.category is not None and self.category not in CATEGORIES:
            raise TranscodeConfigError(
                f"transcode: category {self.category!r}: expected one of {', '.join(CATEGORIES)}"
            )
        if self.on_unmapped not in ("keep", "reject"):
            raise TranscodeConfigError(f"transcode: on_unmapped {self.on_unmapped!r}: expected keep or reject")
        if not 0.0 <= float(self.warn_below) <= 1.0:
            raise TranscodeConfigError(f"transcode: warn_below {self.warn_below!r}: expected a rate in [0, 1]")
        if int(self.suggestions) < 1:
            raise TranscodeConfigError("transcode: suggestions: expected a positive integer")

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> TranscodeConfig:
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise TranscodeConfigError(
                f"transcode: unknown key(s) {', '.join(unknown)}; expected some of {', '.join(sorted(allowed))}"
            )
        if "column" not in config:
            raise TranscodeConfigError("transcode: missing key 'column' (the local code column)")
        return cls(**config)


class TranscodeOperator:
    """Adds ``out_column`` (national code) to a frame; unmapped codes are kept (null) or rejected."""

    kind = "transcode"

    def __init__(self, config: TranscodeConfig, *, mappings: MappingSource | None = None) -> None:
        self.config = config
        self.mappings = mappings or RegistryMappings(config.standard_version)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, mappings: MappingSource | None = None) -> TranscodeOperator:
        return cls(TranscodeConfig.from_mapping(config), mappings=mappings)

    def _check_columns(self, names: list[str], table: str) -> None:
        cfg = self.config
        wanted = [cfg.column, cfg.institution_column, cfg.category_column, cfg.name_column]
        missing = [c for c in wanted if c and c not in names]
        if missing:
            raise TranscodeError(f"{table}: transcode needs column(s) {', '.join(missing)}; it has {', '.join(names)}")

    def _mapping_frame(self, pairs: list[tuple[str, str]]) -> pl.DataFrame:
        cfg = self.config
        parts = [
            self.mappings.mapping_table(inst, cat).select(
                pl.lit(inst, pl.Utf8).alias(_INST),
                pl.lit(cat, pl.Utf8).alias(_CAT),
                pl.col("local_code").alias(cfg.column),
                pl.col("national_code").alias(cfg.out_column),
                *([pl.col("national_name").alias(cfg.out_name_column)] if cfg.out_name_column else []),
            )
            for inst, cat in pairs
        ]
        schema = {_INST: pl.Utf8, _CAT: pl.Utf8, cfg.column: pl.Utf8, cfg.out_column: pl.Utf8}
        if cfg.out_name_column:
            schema[cfg.out_name_column] = pl.Utf8
        return pl.concat(parts) if parts else pl.DataFrame(schema=schema)

    def run(self, frame: nw.LazyFrame, ctx: OperatorContext) -> OperatorResult:
        cfg = self.config
        started = time.perf_counter()
        names = frame.collect_schema().names()
        self._check_columns(names, ctx.table)
        category = nw.col(cfg.category_column) if cfg.category_column else nw.lit(cfg.category)
        produced = [c for c in (cfg.out_column, cfg.out_name_column) if c and c in names]
        keyed = frame.drop(*produced).with_columns(
            nw.col(cfg.institution_column).cast(nw.String).alias(_INST),
            category.cast(nw.String).alias(_CAT),
            nw.col(cfg.column).cast(nw.String),
        )
        pairs = keyed.select(_INST, _CAT).unique().drop_nulls().collect().rows()
        mapping = ctx.engine.from_arrow(self._mapping_frame(sorted(pairs)).to_arrow())
        # the joined frame stays in the engine (polars: computed once; Spark: cached on the executors) and is
        # read by the figures, the review and the output; only aggregates and distinct unmapped codes come back
        joined = ctx.engine.persist(keyed.join(mapping, on=[_INST, _CAT, cfg.column], how="left"))

        by_institution = _rate_by_institution(joined, cfg.out_column)
        rows_in = sum(v["rows"] for v in by_institution.values())
        mapped_rows = sum(v["mapped"] for v in by_institution.values())
        unmapped = nw.col(cfg.out_column).is_null()
        joined_at = time.perf_counter()
        review = self._review(joined.filter(unmapped & ~nw.col(cfg.column).is_null()), ctx)
        out_cols = [c for c in joined.collect_schema().names() if c not in (_INST, _CAT)]
        rate = mapped_rows / rows_in if rows_in else 1.0
        metrics: dict[str, Any] = {
            "mapping_rate": round(rate, 4),
            "mapping_rate_by_institution": by_institution,
            "standard_version": cfg.standard_version or "current",
            **review,
            "seconds_join": round(joined_at - started, 3),
            "seconds_review": round(time.perf_counter() - joined_at, 3),
        }
        missing = getattr(self.mappings, "missing", {})
        if missing:
            metrics["institutions_without_mapping"] = sorted({f"{i}/{c}" for i, c in missing})
        status = StepStatus.OK if rate >= cfg.warn_below else StepStatus.WARN
        if cfg.on_unmapped == "reject":
            reason = nw.concat_str(nw.lit("unmapped "), nw.col(_CAT).fill_null("unknown-category"), nw.lit(" code"))
            return OperatorResult(
                frame=joined.filter(~unmapped).select(out_cols),
                rejected=joined.filter(unmapped).select(*out_cols, reason.alias("_reject_reason")),
                rows_in=rows_in, rows_out=mapped_rows, rows_rejected=rows_in - mapped_rows,
                status=status, metrics=metrics,
            )
        return OperatorResult(
            frame=joined.select(out_cols), rows_in=rows_in, rows_out=rows_in, status=status, metrics=metrics,
        )

    def _review(self, unmapped: nw.LazyFrame, ctx: OperatorContext) -> dict[str, Any]:
        """Distinct unmapped codes with suggestions, upserted into the review table."""
        from medlake.transcode.suggest import SUGGESTION_DTYPE, suggest_codes  # pypinyin, rapidfuzz

        cfg = self.config
        name = nw.col(cfg.name_column) if cfg.name_column else nw.col(cfg.column)
        distinct = pl.from_arrow(
            unmapped.with_columns(name.cast(nw.String).alias("_tc_name"))
            .group_by(_INST, _CAT, cfg.column)
            .agg(nw.col("_tc_name").max().alias("local_name"), nw.len().alias("occurrences"))
            .collect()
            .to_arrow()
        )
        assert isinstance(distinct, pl.DataFrame)
        distinct = distinct.rename({_INST: "institution", _CAT: "category", cfg.column: "local_code"})
        figures: dict[str, Any] = {"unmapped_codes": distinct.height}
        if not cfg.review or distinct.height == 0:
            return figures
        parts = []
        for (category,), group in distinct.group_by("category", maintain_order=True):
            if category not in CATEGORIES:  # no category (a defect the quality checks report): nothing to suggest
                parts.append(group.with_columns(pl.Series("suggestions", [[] for _ in range(group.height)],
                                                          dtype=SUGGESTION_DTYPE)))
                continue
            catalogue = self.mappings.catalogue(str(category))
            names = group["local_name"].fill_null(group["local_code"]).to_list()
            parts.append(group.with_columns(suggest_codes(names, catalogue, limit=int(cfg.suggestions))))
        written = write_review(
            ctx.engine, ctx.settings, pl.concat(parts), standard_version=cfg.standard_version or "current"
        )
        figures["review_table"] = str(review_path(ctx.settings))
        if written is not None:
            figures["review_table_version"] = written.version
        return figures


def _rate_by_institution(joined: nw.LazyFrame, out_column: str) -> dict[str, dict[str, Any]]:
    counts = (
        joined.group_by(_INST)
        .agg(nw.len().alias("rows"), nw.col(out_column).count().alias("mapped"))
        .sort(_INST)
        .collect()
        .rows(named=True)
    )
    return {
        str(r[_INST]): {"rows": int(r["rows"]), "mapped": int(r["mapped"]),
                        "rate": round(r["mapped"] / r["rows"], 4) if r["rows"] else 1.0}
        for r in counts
    }
