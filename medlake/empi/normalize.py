"""Input normalisation the EMPI applies before comparing: dates, phones, addresses (polars expressions; the rare
values that need a library are parsed once per distinct value).

* dates: ``1986年6月3日``, ``19860603``, ``1986-06-03``, ``1986/6/3``, ``1986.6.3`` (a time after the date is
  ignored) → ``1986-06-03``; what is not a real date becomes null;
* phones → E.164: Chinese mobiles (``+86 138 1234 5678``, ``138-1234-5678``, ``86-13812345678``) by expression,
  everything else (landlines with area codes, foreign numbers) by ``phonenumbers`` with China as default region;
  what it cannot parse keeps its digits;
* addresses: full-width → half-width (NFKC), no spaces, lower case, the GB/T 2260 prefix (province, prefecture,
  county) split off into ``address_region``, building/unit/room spelled one way (``3栋``/``3号楼`` → ``3幢``,
  ``203室`` → ``203``).
"""

from __future__ import annotations

import polars as pl

__all__ = ["address_parts", "birth_dates_contradict", "normalized_date", "normalized_phone"]

_SEPARATED = r"^(\d{4})\s*[年\-/\.]\s*(\d{1,2})\s*[月\-/\.]\s*(\d{1,2})(?:\D|$)"
_COMPACT = r"^(\d{4})(\d{2})(\d{2})(?:\D|$)"
_PROVINCES = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西",
    "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海", "台湾", "内蒙古",
    "广西", "西藏", "宁夏", "新疆", "香港", "澳门",
)
_PROVINCE = "^(?:" + "|".join(_PROVINCES) + r")(?:省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区)?"
_PREFECTURE = r"^\p{Han}{2,5}?(?:市|自治州|地区|盟)"
_COUNTY = r"^\p{Han}{1,5}?(?:区|县|旗|市)"
_MONTH = 31  # days: birth dates closer than this are one person's date mistyped (siblings are born further apart)


def normalized_date(text: pl.Expr) -> pl.Expr:
    """``YYYY-MM-DD`` from a date written in any of the forms above (text in, text out)."""
    text = text.str.normalize("NFKC").str.strip_chars()
    parts = []
    for pattern in (_SEPARATED, _COMPACT):
        year, month, day = (text.str.extract(pattern, i) for i in (1, 2, 3))
        iso = pl.concat_str([year, month.str.zfill(2), day.str.zfill(2)], separator="-")
        parts.append(iso.str.strptime(pl.Date, "%Y-%m-%d", strict=False))
    return pl.coalesce(parts).dt.strftime("%Y-%m-%d")


def birth_dates_contradict(left: pl.Expr, right: pl.Expr) -> pl.Expr:
    """Two ``YYYY-MM-DD`` dates that are not one keying slip apart: they differ in two digits or more, are more
    than a month apart (09 → 10 is a day off, not another person) and are not the same date with day and month
    swapped or two adjacent digits swapped (null when either is null)."""
    a, b = left.str.replace_all("-", ""), right.str.replace_all("-", "")
    swapped = a == pl.concat_str([b.str.slice(0, 4), b.str.slice(6, 2), b.str.slice(4, 2)])
    transposed = pl.any_horizontal([
        b == pl.concat_str([a.str.slice(0, i), a.str.slice(i + 1, 1), a.str.slice(i, 1), a.str.slice(i + 2)])
        for i in range(7)
    ])
    differing = pl.sum_horizontal([(a.str.slice(i, 1) != b.str.slice(i, 1)).cast(pl.Int32) for i in range(8)])
    days = (left.str.to_date("%Y-%m-%d", strict=False) - right.str.to_date("%Y-%m-%d", strict=False)).dt.total_days()
    near = days.abs().fill_null(_MONTH + 1) <= _MONTH
    return pl.when(a.is_not_null() & b.is_not_null()).then((differing >= 2) & ~swapped & ~transposed & ~near)


def _e164(raw: str) -> str:
    import phonenumbers

    digits = "".join(c for c in raw if c.isdigit())
    try:
        number = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException:
        return digits
    if not phonenumbers.is_possible_number(number):
        return digits
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalized_phone(raw: pl.Series) -> pl.Series:
    """E.164 for each phone (nulls and digit-less values stay null)."""
    text = raw.cast(pl.Utf8).str.normalize("NFKC").str.strip_chars()
    frame = pl.DataFrame({"raw": text}).with_columns(digits=pl.col("raw").str.replace_all(r"\D", ""))
    national = pl.col("digits").str.replace(r"^(?:0086|86)(1\d{10})$", "$1")
    foreign = pl.col("raw").str.contains(r"^(?:\+|00)") & ~pl.col("raw").str.contains(r"^(?:\+|00)\s*86")
    mobile = ~foreign & national.str.contains(r"^1[3-9]\d{9}$")
    frame = frame.with_columns(
        phone=pl.when(pl.col("digits") == "").then(None).when(mobile).then("+86" + national)
    )
    rest = frame.filter(pl.col("phone").is_null() & (pl.col("digits") != ""))["raw"].unique()
    if rest.len():
        parsed = pl.DataFrame({"raw": rest, "_parsed": [_e164(r) for r in rest.to_list()]})
        frame = frame.join(parsed, on="raw", how="left", maintain_order="left").with_columns(
            phone=pl.coalesce("phone", "_parsed")
        )
    return frame["phone"]


def _strip(text: pl.Expr, pattern: str) -> tuple[pl.Expr, pl.Expr]:
    """(``text`` without a leading ``pattern`` match, the match); a match ending in 小区 (an estate) is kept."""
    found = text.str.extract(f"({pattern})", 1)
    keep = found.is_null() | found.str.ends_with("小区") | (found.str.len_chars() == text.str.len_chars())
    return pl.when(keep).then(text).otherwise(text.str.slice(found.str.len_chars())), pl.when(~keep).then(found)


def address_parts(raw: pl.Series) -> pl.DataFrame:
    """``address`` (the street part) and ``address_region`` (the region prefix, null when there is none) of each
    address, in the order of ``raw``."""
    text = pl.col("address")
    frame = pl.DataFrame({"raw": raw.cast(pl.Utf8)}).with_columns(
        address=pl.col("raw").str.normalize("NFKC").str.replace_all(r"\s+", "").str.to_lowercase()
    )
    for level, pattern in enumerate((_PROVINCE, _PREFECTURE, _COUNTY)):  # one column at a time: no nested trees
        stripped, found = _strip(text, pattern)
        frame = frame.with_columns(stripped.alias("address"), found.alias(f"_prefix{level}"))
    return frame.select(
        pl.col("address").str.replace_all(r"(\d+)(?:号楼|栋|幢|座|#楼)", "${1}幢")
        .str.replace_all(r"(\d+)室", "${1}")
        .str.replace_all(r"[,，、\-—]", ""),
        pl.concat_str(pl.col("^_prefix.*$"), ignore_nulls=True).alias("address_region"),
    ).with_columns(pl.all().replace("", None))
