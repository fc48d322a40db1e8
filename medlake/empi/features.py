"""Standardize mapped patient records into the comparison columns the linkage model uses.

The ID number is normalized and validated as polars expressions (the DWD's GB 11643 normalization: 15→18
upgrade, upper-case X; the same validity rules as medlake.identifiers); a valid ID is trusted over the
typed birth date and sex (they are cross-checked and the disagreement flagged), and supplies the region when
the record has none — unless the typed birth date contradicts it beyond a keying slip (more than one digit, not a
day/month swap): then it is a guardian's ID (an infant registered under a parent's number) and is dropped, so it
neither links nor blocks. Dates, phones and addresses are normalised by :mod:`medlake.empi.normalize`.
"""

from __future__ import annotations

import narwhals as nw
import polars as pl

from medlake.empi.field_map import FieldMap
from medlake.empi.names import name_keys
from medlake.empi.normalize import address_parts, birth_dates_contradict, normalized_date, normalized_phone
from medlake.identifiers import CHECK_CHARS, CHECK_WEIGHTS
from medlake.lake.dwd import normalize_id_number_column

__all__ = ["FEATURE_SCHEMA", "standardize_records"]

FEATURE_SCHEMA: dict[str, pl.DataType] = {
    "record_id": pl.Utf8(),
    "name": pl.Utf8(),
    "id_number": pl.Utf8(),
    "id_valid": pl.Boolean(),
    "birth_date": pl.Utf8(),
    "sex": pl.Utf8(),
    "phone": pl.Utf8(),
    "address": pl.Utf8(),
    "region": pl.Utf8(),
    "source": pl.Utf8(),
    "updated_at": pl.Utf8(),
    "name_norm": pl.Utf8(),
    "name_pinyin": pl.Utf8(),
    "name_key": pl.Utf8(),
    "name_keys": pl.List(pl.Utf8()),
    "surnames": pl.List(pl.Utf8()),
    "birth_date_conflict": pl.Boolean(),
    "sex_conflict": pl.Boolean(),
    "fingerprint": pl.Utf8(),
}

_SEX_CODES = {
    "1": "1", "2": "2", "男": "1", "女": "2", "m": "1", "f": "2", "male": "1", "female": "2",
    "男性": "1", "女性": "2",
}
_KEY_SEP = "\x1f"


def _text(frame: pl.DataFrame, column: str | None) -> pl.Expr:
    if column is None:
        return pl.lit(None, dtype=pl.Utf8)
    dtype = frame.schema[column]
    expr = pl.col(column)
    if dtype == pl.Date:
        return expr.dt.strftime("%Y-%m-%d")
    if isinstance(dtype, pl.Datetime):
        return expr.dt.strftime("%Y-%m-%d %H:%M:%S")
    text = expr.cast(pl.Utf8).str.strip_chars()
    return pl.when(text.str.len_chars() > 0).then(text).otherwise(None)


def _birth_date(frame: pl.DataFrame, column: str | None) -> pl.Expr:
    if column is None:
        return pl.lit(None, dtype=pl.Utf8)
    dtype = frame.schema[column]
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return pl.col(column).cast(pl.Date).dt.strftime("%Y-%m-%d")
    return normalized_date(pl.col(column).cast(pl.Utf8))


def _valid_id_expr(column: str) -> pl.Expr:
    """GB 11643 validity as a column expression (same rules as medlake.identifiers.is_valid_id_number):
    17 digits and a digit or X, a real birth date, and the right check character."""
    text = pl.col(column)
    shaped = text.str.contains(r"^\d{17}[\dX]$").fill_null(False)
    digits = pl.when(shaped).then(text).otherwise(pl.lit("0" * 18))
    remainder = pl.sum_horizontal([digits.str.slice(i, 1).cast(pl.Int64) * w for i, w in enumerate(CHECK_WEIGHTS)]) % 11
    expected = remainder.replace_strict(dict(enumerate(CHECK_CHARS)), return_dtype=pl.Utf8)
    born = digits.str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False).is_not_null()
    return shaped & born & (digits.str.slice(17, 1) == expected)


def _id_columns(raw_ids: pl.Series) -> pl.DataFrame:
    """Normalize and validate each distinct raw ID once, vectorized (the DWD's normalization expression)."""
    distinct = raw_ids.drop_nulls().unique()
    distinct = pl.DataFrame({"_raw_id": distinct, "id_number": distinct})
    normalized = normalize_id_number_column(nw.from_native(distinct.lazy()), "id_number").collect()
    return nw.to_native(normalized).with_columns(id_valid=_valid_id_expr("id_number").fill_null(False))


def _joined(keys: list[tuple[str, ...] | None]) -> pl.Series:
    """A list column built from one joined string per row (fast) instead of nested Python lists (slow)."""
    return pl.Series([_KEY_SEP.join(k) if k is not None else None for k in keys], dtype=pl.Utf8).str.split(_KEY_SEP)


def _name_columns(names: pl.Series) -> pl.DataFrame:
    distinct = names.drop_nulls().unique().to_list()
    keys = [name_keys(n) for n in distinct]
    return pl.DataFrame(
        {
            "name": pl.Series(distinct, dtype=pl.Utf8),
            "name_norm": pl.Series([k.normalized if k else None for k in keys], dtype=pl.Utf8),
            "name_pinyin": pl.Series([k.pinyin if k else None for k in keys], dtype=pl.Utf8),
            "name_key": pl.Series([k.blocking_key if k else None for k in keys], dtype=pl.Utf8),
            "name_keys": _joined([k.keys if k else None for k in keys]),
            "surnames": _joined([k.surnames if k else None for k in keys]),
        }
    )


def standardize_records(records: pl.DataFrame, field_map: FieldMap) -> pl.DataFrame:
    """One row per input record with the columns of ``FEATURE_SCHEMA`` (missing fields are null)."""
    field_map.check_columns(records.columns)
    record_id = (
        _text(records, field_map.record_id)
        if field_map.record_id
        else pl.int_range(1, pl.len() + 1).cast(pl.Utf8)
    )
    base = records.select(
        record_id.alias("record_id"),
        _text(records, field_map.name).alias("name"),
        _text(records, field_map.id_number).alias("_raw_id"),
        _birth_date(records, field_map.birth_date).alias("_given_birth"),
        _text(records, field_map.sex).str.to_lowercase().replace_strict(_SEX_CODES, default=None).alias("_given_sex"),
        _text(records, field_map.phone).alias("phone"),
        _text(records, field_map.address).alias("address"),
        _text(records, field_map.region).alias("_given_region"),
        _text(records, field_map.source).alias("source"),
        _text(records, field_map.updated_at).alias("updated_at"),
    )
    base = base.with_columns(phone=normalized_phone(base["phone"]), address=address_parts(base["address"])["address"])
    base = base.join(_id_columns(base["_raw_id"]), on="_raw_id", how="left")
    base = base.join(_name_columns(base["name"]), on="name", how="left")
    id_birth = pl.col("id_number").str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False).dt.strftime("%Y-%m-%d")
    # an infant's record under a parent's ID: the ID is not the person's own, so it neither links nor blocks
    contradicted = birth_dates_contradict(id_birth, pl.col("_given_birth")).fill_null(False)
    guardian = pl.col("id_valid").fill_null(False) & contradicted
    base = base.with_columns(
        id_number=pl.when(guardian).then(None).otherwise(pl.col("id_number")),
        id_valid=pl.when(guardian).then(False).otherwise(pl.col("id_valid")),
    )
    valid = pl.col("id_valid").fill_null(False)
    id_sex = pl.when(pl.col("id_number").str.slice(16, 1).cast(pl.Int32, strict=False) % 2 == 1).then(
        pl.lit("1")
    ).otherwise(pl.lit("2"))
    featured = base.with_columns(
        id_valid=valid,
        birth_date=pl.when(valid).then(id_birth).otherwise(pl.col("_given_birth")),
        sex=pl.when(valid).then(id_sex).otherwise(pl.col("_given_sex")),
        region=pl.coalesce(pl.col("_given_region"), pl.when(valid).then(pl.col("id_number").str.slice(0, 6))),
        birth_date_conflict=valid & pl.col("_given_birth").is_not_null() & (pl.col("_given_birth") != id_birth),
        sex_conflict=valid & pl.col("_given_sex").is_not_null() & (pl.col("_given_sex") != id_sex),
        phone=pl.when(pl.col("phone").str.len_chars() > 0).then(pl.col("phone")),
    )
    compared = ["name", "id_number", "birth_date", "sex", "phone", "address", "region", "source", "updated_at"]
    featured = featured.with_columns(
        fingerprint=pl.concat_str([pl.col(c).fill_null("\x00") for c in compared], separator="\x1f")
        .hash(seed=11643)
        .cast(pl.Utf8)
    )
    return featured.select([pl.col(c).cast(t) for c, t in FEATURE_SCHEMA.items()])
