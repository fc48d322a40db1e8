"""Standardize mapped patient records into the comparison columns the linkage model uses.

The ID number is normalized by medlake.identifiers (15→18 upgrade, upper-case X); a valid ID is trusted over the
typed birth date and sex (they are cross-checked and the disagreement flagged), and supplies the region when
the record has none.
"""

from __future__ import annotations

import polars as pl

from medlake.empi.field_map import FieldMap
from medlake.empi.names import name_keys
from medlake.identifiers import is_valid_id_number, normalize_id_number

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
_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y.%m.%d", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S")


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
    text = pl.col(column).cast(pl.Utf8).str.strip_chars()
    parsed = pl.coalesce([text.str.strptime(pl.Date, f, strict=False) for f in _DATE_FORMATS])
    return parsed.dt.strftime("%Y-%m-%d")


def _id_columns(raw_ids: pl.Series) -> pl.DataFrame:
    """Normalize each distinct raw ID once (IDs are nearly unique, so this is the expensive step)."""
    distinct = raw_ids.drop_nulls().unique()
    normalized = [normalize_id_number(v) for v in distinct.to_list()]
    return pl.DataFrame(
        {
            "_raw_id": distinct,
            "id_number": pl.Series(normalized, dtype=pl.Utf8),
            "id_valid": pl.Series([is_valid_id_number(v) for v in normalized], dtype=pl.Boolean),
        }
    )


def _name_columns(names: pl.Series) -> pl.DataFrame:
    distinct = names.drop_nulls().unique().to_list()
    keys = [name_keys(n) for n in distinct]
    return pl.DataFrame(
        {
            "name": pl.Series(distinct, dtype=pl.Utf8),
            "name_norm": pl.Series([k.normalized if k else None for k in keys], dtype=pl.Utf8),
            "name_pinyin": pl.Series([k.pinyin if k else None for k in keys], dtype=pl.Utf8),
            "name_key": pl.Series([k.key if k else None for k in keys], dtype=pl.Utf8),
            "name_keys": pl.Series([list(k.keys) if k else None for k in keys], dtype=pl.List(pl.Utf8)),
            "surnames": pl.Series([list(k.surnames) if k else None for k in keys], dtype=pl.List(pl.Utf8)),
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
    phone_digits = _text(records, field_map.phone).str.replace_all(r"\D", "")
    base = records.select(
        record_id.alias("record_id"),
        _text(records, field_map.name).alias("name"),
        _text(records, field_map.id_number).alias("_raw_id"),
        _birth_date(records, field_map.birth_date).alias("_given_birth"),
        _text(records, field_map.sex).str.to_lowercase().replace_strict(_SEX_CODES, default=None).alias("_given_sex"),
        pl.when((phone_digits.str.len_chars() == 13) & phone_digits.str.starts_with("86"))
        .then(phone_digits.str.slice(2))
        .otherwise(phone_digits.str.strip_prefix("0086"))
        .alias("phone"),
        _text(records, field_map.address).str.replace_all(r"\s+", "").str.to_lowercase().alias("address"),
        _text(records, field_map.region).alias("_given_region"),
        _text(records, field_map.source).alias("source"),
        _text(records, field_map.updated_at).alias("updated_at"),
    )
    base = base.join(_id_columns(base["_raw_id"]), on="_raw_id", how="left")
    base = base.join(_name_columns(base["name"]), on="name", how="left")
    valid = pl.col("id_valid").fill_null(False)
    id_birth = pl.col("id_number").str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False).dt.strftime("%Y-%m-%d")
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
