"""DWD-shaped synthetic rows, straight into a frame: typed columns, valid ID numbers, codes from the standards'
mapping tables and reference catalogues. Where :func:`medlake.synth.generate` writes what institutions deliver to
the landing zone (text, defects, truth), this gives what the DWD holds after typing, for exercising checks and
operators without the ODS/DWD round trip; callers break rows on purpose."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from medlake.identifiers import CHECK_CHARS, CHECK_WEIGHTS
from medlake.reference import lab_tests
from medlake.standards.registry import Registry, dwd_columns

__all__ = ["synthetic_dwd"]

_HOSPITALS = ("H33010200001", "H33010200002", "H33010600003", "H33010800004")
_REGIONS = ("330102", "330105", "330106", "330108", "330109", "330110", "110108", "310104")
_ICD = ("I10", "E11.9", "J06.9", "J18.9", "I25.1", "K29.7", "M54.5", "N39.0")
_WEIGHTS = np.array(CHECK_WEIGHTS)
_NAMES = ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强", "周杰", "吴霞")
_DEC = pl.Decimal(18, 4)
_EPOCH = datetime(2024, 1, 1)


def _pick(rng: np.random.Generator, values: tuple[str, ...], n: int) -> pl.Series:
    return pl.Series(values, dtype=pl.Utf8).gather(rng.integers(0, len(values), n))


def _times(rng: np.random.Generator, n: int, start: datetime = _EPOCH, days: int = 300) -> pl.Series:
    seconds = rng.integers(0, days * 86400, n)
    return pl.Series(np.datetime64(start, "us") + seconds.astype("timedelta64[s]"))


def _ids(n: int, prefix: str) -> pl.Series:
    return prefix + pl.Series(np.arange(n)).cast(pl.Utf8).str.zfill(9)


def _id_numbers(rng: np.random.Generator, regions: pl.Series, births: pl.Series) -> pl.Series:
    seq = rng.integers(0, 1000, len(regions))
    first17 = regions + births.dt.strftime("%Y%m%d") + pl.Series(seq).cast(pl.Utf8).str.zfill(3)
    digits = np.frombuffer(first17.cast(pl.Binary).to_numpy().astype("S17").tobytes(), dtype=np.uint8)
    digits = (digits.reshape(-1, 17) - ord("0")).astype(np.int64)
    check = pl.Series(list(CHECK_CHARS)).gather((digits @ _WEIGHTS) % 11)
    return first17 + check


def _load_columns(frame: pl.DataFrame, institution: pl.Series | str) -> pl.DataFrame:
    n = frame.height
    inst = institution if isinstance(institution, pl.Series) else pl.Series([institution] * n)
    return frame.with_columns(
        institution_code=inst,
        updated_at=pl.lit(datetime(2024, 11, 1)),
        _batch_id=pl.lit("synth-batch-0001"),
        _loaded_at=pl.lit(datetime.now()),
    )


def _money(values: np.ndarray) -> pl.Series:
    return pl.Series(np.round(values, 2)).cast(_DEC)


def _local_items(hospital_index: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """item_category and local_item_code drawn from each row's hospital mapping tables (drug and service)."""
    registry = Registry.load()
    blocks = [
        pl.concat([registry.mapping_table(h, c).select(pl.lit(c).alias("item_category"),
                                                        pl.col("local_code").alias("local_item_code"))
                   for c in ("drug", "service")])
        for h in _HOSPITALS
    ]
    sizes = np.array([b.height for b in blocks])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    picks = offsets[hospital_index] + (rng.random(len(hospital_index)) * sizes[hospital_index]).astype(np.int64)
    return pl.concat(blocks)[picks]


def _lab_tests(n: int, rng: np.random.Generator) -> pl.DataFrame:
    tests = lab_tests()
    return tests.select("test_code", pl.col("name").alias("test_name"), "unit")[rng.integers(0, tests.height, n)]


def _frame(table: str, n: int, rng: np.random.Generator) -> pl.DataFrame:
    hospital_index = rng.integers(0, len(_HOSPITALS), n)
    hospital = pl.Series(_HOSPITALS, dtype=pl.Utf8).gather(hospital_index)
    if table == "patient":
        births = pl.Series(np.datetime64("1940-01-01") + rng.integers(0, 29000, n).astype("timedelta64[D]"))
        regions = _pick(rng, _REGIONS, n)
        ids = _id_numbers(rng, regions, births)
        sex = (2 - ids.str.slice(16, 1).cast(pl.Int64) % 2).cast(pl.Utf8)
        data = {"patient_id": _ids(n, "P"), "name": _pick(rng, _NAMES, n), "id_number": ids, "sex_code": sex,
                "birth_date": births, "phone": pl.Series(rng.integers(13000000000, 13999999999, n)).cast(pl.Utf8),
                "region_code": regions, "address": pl.Series(["浙江省杭州市西湖区文三路1号"] * n)}
    elif table == "encounter":
        admit = _times(rng, n)
        stay = rng.integers(0, 20 * 86400, n).astype("timedelta64[s]")
        data = {"encounter_id": _ids(n, "E"), "patient_id": _ids(n, "P"),
                "encounter_type": _pick(rng, ("outpatient", "emergency", "inpatient"), n),
                "dept_code": _pick(rng, ("0101", "0202", "0303"), n), "dept_name": _pick(rng, ("内科", "外科"), n),
                "admit_time": admit, "discharge_time": pl.Series(admit.to_numpy() + stay),
                "doctor_id": _pick(rng, ("D001", "D002", "D003"), n)}
    elif table == "diagnosis":
        data = {"encounter_id": _ids(n, "E"), "diag_seq": pl.Series([1] * n, dtype=pl.Int64),
                "diag_code": _pick(rng, _ICD, n), "diag_name": _pick(rng, ("高血压", "糖尿病"), n),
                "diag_type": pl.Series(["1"] * n), "diag_time": _times(rng, n)}
    elif table == "order_item":
        qty = rng.integers(1, 10, n).astype(float)
        price = np.round(rng.uniform(1, 500, n), 2)
        items = _local_items(hospital_index, rng)
        data = {"order_id": _ids(n, "O"), "encounter_id": _ids(n, "E"),
                "item_category": items["item_category"], "local_item_code": items["local_item_code"],
                "item_name": _pick(rng, ("阿莫西林胶囊", "血常规"), n), "quantity": _money(qty),
                "unit_price": _money(price), "amount": _money(qty * price), "order_time": _times(rng, n)}
    elif table == "lab_result":
        low = np.round(rng.uniform(0, 5, n), 2)
        tests = _lab_tests(n, rng)
        data = {"result_id": _ids(n, "R"), "encounter_id": _ids(n, "E"), "test_code": tests["test_code"],
                "test_name": tests["test_name"], "result_value": _money(rng.uniform(0, 20, n)),
                "unit": tests["unit"], "ref_low": _money(low), "ref_high": _money(low + 5),
                "report_time": _times(rng, n)}
    else:
        total = np.round(rng.uniform(10, 20000, n), 2)
        fund = np.round(total * rng.uniform(0, 0.9, n), 2)
        begin = _times(rng, n).dt.date()
        births = pl.Series(np.datetime64("1950-01-01") + rng.integers(0, 20000, n).astype("timedelta64[D]"))
        data = {"setl_id": _ids(n, "S"), "psn_no": _ids(n, "33"), "psn_name": _pick(rng, _NAMES, n),
                "id_number": _id_numbers(rng, _pick(rng, _REGIONS, n), births), "medins_code": hospital,
                "encounter_id": _ids(n, "E"), "setl_type": _pick(rng, ("outpatient", "inpatient"), n),
                "setl_time": pl.Series([datetime(2024, 10, 30)] * n), "begin_date": begin, "end_date": begin,
                "total_amount": _money(total), "fund_paid": _money(fund), "self_paid": _money(total - fund),
                "setl_status": pl.Series(["1"] * n), "revision": pl.Series([1] * n, dtype=pl.Int64)}
        frame = _load_columns(pl.DataFrame(data), "YB330100")
        return frame.select(dwd_columns(table))
    return _load_columns(pl.DataFrame(data), hospital).select(dwd_columns(table))


def synthetic_dwd(table: str, rows: int, seed: int = 7) -> pl.DataFrame:
    """``rows`` DWD-shaped rows of ``table``, valid against the standards (callers break rows on purpose)."""
    return _frame(table, rows, np.random.default_rng(seed))
