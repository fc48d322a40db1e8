"""DWD: typed, cleaned, standardized detail tables, upserted (Delta MERGE) on business keys.

Each DWD table keeps, in its own commit metadata, the last ODS sequence it consumed (``medlake.ods_seq``), so a run
reads only rows landed since the previous one and the watermark moves atomically with the data. Re-deliveries and
corrections (a newer ``updated_at``, a higher settlement ``revision``) replace the stored row; older ones never do.

Typing rules: a business-key or required value that cannot be typed sends the row to quarantine; an optional value
that cannot be typed is set to null and quarantined alone (field-level), so the rest of the row is not lost.
Invalid but well-typed values (a bad check digit, an unknown ICD code) are kept: catching them is the job of the
quality checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import narwhals as nw

from medlake.config import Settings
from medlake.engine.base import Engine, WriteResult
from medlake.identifiers import CHECK_CHARS, CHECK_WEIGHTS
from medlake.lake.crashpoints import crash_point
from medlake.lake.locks import table_lock
from medlake.lake.ods import ods_path
from medlake.lake.quarantine import write_quarantine
from medlake.sources import SourceTable

__all__ = [
    "DWD_LOAD_COLUMNS",
    "ENCOUNTER_TYPES",
    "PARTITION_COLUMN",
    "SEX_CODES",
    "WATERMARK_KEY",
    "DwdLoadReport",
    "dwd_columns",
    "dwd_key",
    "dwd_partitions",
    "dwd_path",
    "key_block_expr",
    "load_dwd_table",
    "normalize_id_number_column",
]

WATERMARK_KEY = "medlake.ods_seq"
DWD_LOAD_COLUMNS = ("_batch_id", "_loaded_at")
PARTITION_COLUMN = "_key_block"

# GB/T 2261.1: what hospitals deliver → the standard code.
SEX_CODES: dict[str, str] = {
    "1": "1", "男": "1", "M": "1", "MALE": "1", "男性": "1",
    "2": "2", "女": "2", "F": "2", "FEMALE": "2", "女性": "2",
    "0": "0", "未知": "0", "U": "0", "UNKNOWN": "0",
    "9": "9", "未说明": "9", "未说明的性别": "9",
}
ENCOUNTER_TYPES: dict[str, str] = {
    "OUTPATIENT": "outpatient", "门诊": "outpatient", "O": "outpatient", "MZ": "outpatient", "1": "outpatient",
    "EMERGENCY": "emergency", "急诊": "emergency", "E": "emergency", "JZ": "emergency", "2": "emergency",
    "INPATIENT": "inpatient", "住院": "inpatient", "I": "inpatient", "ZY": "inpatient", "3": "inpatient",
}
_STANDARDIZED: dict[str, dict[str, str]] = {"sex_code": SEX_CODES, "encounter_type": ENCOUNTER_TYPES}

_FULLWIDTH = {"０": "0", "１": "1", "２": "2", "３": "3", "４": "4", "５": "5", "６": "6", "７": "7", "８": "8",
              "９": "9", "Ｘ": "X", "ｘ": "X"}


@dataclass
class DwdLoadReport:
    table: str
    rows_read: int = 0
    rows_merged: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_quarantined: int = 0
    fields_nulled: int = 0
    watermark: int = -1
    version: int | None = None


def dwd_path(settings: Settings, table: str) -> str:
    return str(settings.table_path("dwd", table))


def dwd_key(spec: SourceTable) -> tuple[str, ...]:
    """Merge key: hospital tables are keyed within the delivering institution; settlements by their own id."""
    return spec.business_key if spec.delivered_by == "insurance" else ("institution_code", *spec.business_key)


def dwd_columns(spec: SourceTable) -> list[str]:
    """DWD column order: institution, the source columns typed, load columns (and the key-block partition)."""
    return ["institution_code", *spec.column_names, *DWD_LOAD_COLUMNS, *dwd_partitions(spec)]


def dwd_partitions(spec: SourceTable) -> tuple[str, ...]:
    return (PARTITION_COLUMN,) if spec.key_block_chars else ()


def key_block_expr(spec: SourceTable) -> nw.Expr:
    """The business key without its last ``key_block_chars`` characters: blocks of consecutive IDs."""
    block = nw.col(spec.business_key[-1]).str.replace_all(f".{{1,{spec.key_block_chars}}}$", "", literal=False)
    # an empty partition value would be stored as null (and never match a literal): short keys share block "-"
    return nw.when(block.str.len_chars() == 0).then(nw.lit("-")).otherwise(block).alias(PARTITION_COLUMN)


def _id_text(column: str) -> nw.Expr:
    """Trimmed, without inner spaces, full-width digits/X made ASCII, upper-case."""
    text = nw.col(column).str.strip_chars().str.replace_all(" ", "", literal=True)
    for wide, ascii_char in _FULLWIDTH.items():
        text = text.str.replace_all(wide, ascii_char, literal=True)
    return text.str.to_uppercase()


def _legacy_first17(text: nw.Expr) -> nw.Expr:
    return nw.concat_str([text.str.slice(0, 6), nw.lit("19"), text.str.slice(6, 9)])  # `+` is numeric on Spark


def _legacy_remainder(text: nw.Expr) -> nw.Expr:
    """GB 11643 weighted sum mod 11 of a legacy number's upgraded first 17 digits (0 for any other text)."""
    digits = nw.when(text.str.contains(r"^\d{15}$")).then(_legacy_first17(text)).otherwise(nw.lit("0" * 17))
    return nw.sum_horizontal(*[digits.str.slice(i, 1).cast(nw.Int64) * w for i, w in enumerate(CHECK_WEIGHTS)]) % 11


def _upgraded_id(text: nw.Expr, remainder: nw.Expr) -> nw.Expr:
    check_char = nw.lit(CHECK_CHARS[10])
    for r in range(9, -1, -1):
        check_char = nw.when(remainder == r).then(nw.lit(CHECK_CHARS[r])).otherwise(check_char)
    return (
        nw.when(text.str.len_chars() == 0).then(nw.lit(None, dtype=nw.String()))
        .when(text.str.contains(r"^\d{15}$")).then(nw.concat_str([_legacy_first17(text), check_char]))
        .otherwise(text)
    )


def normalize_id_number_column(frame: nw.LazyFrame, column: str) -> nw.LazyFrame:
    """GB 11643 normalization of ``column`` (same rules as medlake.identifiers.normalize_id_number): trim,
    full-width → ASCII, upper-case X, upgrade a legacy 15-digit number (19YY + recomputed check). Three projections,
    each over a plain column: as one expression the cleaned text is repeated hundreds of times, which Spark's code
    generator cannot compile (and polars evaluates ~10× slower)."""
    remainder = f"__{column}_remainder"
    return (
        frame.with_columns(_id_text(column).alias(column))
        .with_columns(_legacy_remainder(nw.col(column)).alias(remainder))
        .with_columns(_upgraded_id(nw.col(column), nw.col(remainder)).alias(column))
        .drop(remainder)
    )


def _standardize(frame: nw.LazyFrame, spec: SourceTable) -> nw.LazyFrame:
    """Trim text, map delivered codes to standard codes (unknown codes kept for the checks to flag)."""
    exprs = []
    for col in spec.columns:
        if col.dtype != "string":
            continue
        trimmed = nw.col(col.name).str.strip_chars()
        if col.name in _STANDARDIZED:
            mapping = _STANDARDIZED[col.name]
            upper = trimmed.str.to_uppercase()
            exprs.append(upper.replace_strict(mapping, default=trimmed, return_dtype=nw.String()).alias(col.name))
        elif col.name != "id_number":  # id_number: below
            exprs.append(nw.when(trimmed.str.len_chars() == 0).then(nw.lit(None, dtype=nw.String()))
                         .otherwise(trimmed).alias(col.name))
    standardized = frame.with_columns(*exprs)
    return normalize_id_number_column(standardized, "id_number") if "id_number" in spec.column_names else standardized


def _quarantine_rows(frame: nw.LazyFrame, spec: SourceTable, column: str, reason_prefix: str) -> nw.LazyFrame:
    """Quarantine records for rows whose ``column`` text did not type, in the quarantine table's shape."""
    raw = f"__raw_{column}"
    return frame.select(
        nw.lit("dwd").alias("layer"),
        nw.lit(spec.name).alias("table"),
        nw.col("_institution").alias("institution"),
        nw.col("_batch_id").alias("batch_id"),
        nw.col("_source_file").alias("source_file"),
        nw.col("_file_sha256").alias("file_sha256"),
        nw.col("_source_line").cast(nw.Int64()).alias("source_line"),
        nw.lit(column).alias("field"),
        nw.concat_str([nw.lit(f"{reason_prefix}: '"), nw.col(raw),
                       nw.lit(f"' is not a valid {spec.column(column).dtype}")]).alias("reason"),
        nw.col(raw).alias("raw"),
    )


def load_dwd_table(engine: Engine, settings: Settings, spec: SourceTable) -> DwdLoadReport:
    """Type, standardize and MERGE the ODS rows landed since the last run into the DWD table, holding the table's
    write lock from reading the watermark to committing the MERGE."""
    with table_lock(settings, f"dwd/{spec.name}"):
        return _merge_landed(engine, settings, spec)


def _merge_landed(engine: Engine, settings: Settings, spec: SourceTable) -> DwdLoadReport:
    target = dwd_path(settings, spec.name)
    report = DwdLoadReport(spec.name)
    watermark = int(engine.commit_metadata(target).get(WATERMARK_KEY, "-1"))
    source = ods_path(settings, spec.name)
    report.watermark = watermark
    if not engine.exists(source):
        return report
    fresh = engine.read(source).filter(nw.col("_ods_seq") > watermark)
    typed_columns = {c.name: c.dtype for c in spec.columns if c.dtype != "string"}
    frame = engine.persist(engine.try_cast_text(_standardize(fresh, spec), typed_columns))
    counts = engine.to_arrow(frame.select(nw.len().alias("n"), nw.col("_ods_seq").max().alias("seq")))
    report.rows_read = counts.column("n")[0].as_py()
    if report.rows_read == 0:
        return report
    new_watermark = int(counts.column("seq")[0].as_py())

    def failed(name: str) -> nw.Expr:
        raw = nw.col(f"__raw_{name}").str.strip_chars()
        return ~raw.is_null() & (raw.str.len_chars() > 0) & nw.col(name).is_null()

    hard = [c.name for c in spec.columns if c.name in typed_columns and (c.required or c.name in spec.business_key)]
    soft = [c for c in typed_columns if c not in hard]
    rejects = [_quarantine_rows(frame.filter(failed(c)), spec, c, "required value") for c in hard]
    rejects += [_quarantine_rows(frame.filter(failed(c)), spec, c, "value set to null") for c in soft]
    rejected = engine.to_arrow(nw.concat(rejects)) if rejects else None
    if rejected is not None:
        crash_point("dwd.quarantine.before_commit")
        write_quarantine(engine, settings, layer="dwd", table=spec.name, rows=rejected)
        crash_point("dwd.quarantine.after_commit")
    keep = frame
    if hard:
        bad_any = nw.any_horizontal(*[failed(c) for c in hard], ignore_nulls=True)
        report.rows_quarantined = int(engine.to_arrow(frame.filter(bad_any).select(nw.len())).column(0)[0].as_py())
        keep = frame.filter(~bad_any)
    report.fields_nulled = (rejected.num_rows if rejected is not None else 0) - report.rows_quarantined
    key = dwd_key(spec)
    latest = (
        keep.with_columns(nw.col("_institution").alias("institution_code"),
                          *([key_block_expr(spec)] if spec.key_block_chars else []))
        .unique(subset=list(key), keep="last", order_by=[spec.version_column, "_ods_seq", "_source_line"])
        .select(dwd_columns(spec))
    )
    crash_point("dwd.merge.before_commit")
    result: WriteResult = engine.merge(
        latest, target, keys=key, version_column=spec.version_column,
        metadata={WATERMARK_KEY: str(new_watermark)}, partition_by=dwd_partitions(spec),
    )
    crash_point("dwd.merge.after_commit")
    report.rows_merged = result.rows_written
    report.rows_inserted = result.rows_inserted
    report.rows_updated = result.rows_updated
    report.watermark = new_watermark
    report.version = result.version
    return report

