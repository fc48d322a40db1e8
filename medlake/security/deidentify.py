"""De-identification that holds (GB/T 37964-2019, 个人信息去标识化指南): measure the re-identification risk of a
data set on its declared quasi-identifiers (准标识符) and enforce a minimum k for the purpose by generalisation
(泛化) and record suppression (抑制).

Terms (GB/T 37964-2019 §3): an equivalence class (等价类) is the set of records sharing the same quasi-identifier
values; a data set is k-anonymous when every class has at least k records, l-diverse when every class holds at
least l distinct values of each sensitive attribute. The risk measured is the prosecutor risk: a record in a class
of size c is re-identified with probability 1/c, so the largest risk is 1/k.

Generalisation follows hierarchies shared across columns, so that no column reveals what another generalises: a
*region* level applies to a region code and to the region part of an ID number alike, a *birth* level to a birth
year and to the year part of the ID number. The operator searches the lattice of levels for the least generalised
combination that reaches ``min_k`` (and ``min_l``) after suppressing at most ``max_suppression`` of the records,
then suppresses the records of the classes still too small.

YAML step::

    - operator: deidentify
      purpose: research              # min_k / min_l / max_suppression from medlake/security/deidentification.yaml
      quasi_identifiers:             # column: role (region | year | age | sex | id_number | keep)
        id_number: id_number         # a (partially masked) ID number: its region and birth-year parts
        sex_code: sex
        birth_date: year
        region_code: region
      sensitive: [diag_code]         # optional: l-diversity on these columns
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import narwhals as nw
import pyarrow as pa
import yaml

from medlake.operators.base import OperatorContext, OperatorResult, StepStatus, count_rows
from medlake.security.errors import PolicyError

if TYPE_CHECKING:
    from medlake.config import Settings
    from medlake.engine.base import Engine

__all__ = [
    "DEFAULT_PURPOSES",
    "LEVELS",
    "RISK_TABLE",
    "ROLES",
    "DeidentifyConfig",
    "DeidentifyOperator",
    "Purpose",
    "RiskReport",
    "generalise",
    "mask_inconsistencies",
    "measure_risk",
    "purposes",
    "record_risk",
    "record_step_risk",
    "risk_history",
]

DEFAULT_PURPOSES = Path(__file__).with_name("deidentification.yaml")
RISK_TABLE = ("catalog", "deidentification_risk")
# Role → the hierarchies (dimensions) whose level generalises it.
ROLES: dict[str, tuple[str, ...]] = {
    "region": ("region",), "year": ("birth",), "age": ("age",), "sex": ("sex",), "id_number": ("region", "birth"),
    "keep": (),
}
# Dimension → names of its levels, finest first; the last level suppresses the value.
LEVELS: dict[str, tuple[str, ...]] = {
    "region": ("county", "prefecture", "province", "suppressed"),
    "birth": ("year", "5 years", "10 years", "suppressed"),
    "age": ("year", "5 years", "10 years", "suppressed"),
    "sex": ("kept", "suppressed"),
}
_BAND = {1: 5, 2: 10}


@dataclass(frozen=True)
class Purpose:
    name: str
    min_k: int
    min_l: int = 1
    max_suppression: float = 0.05


@lru_cache(maxsize=4)
def purposes(path: Path = DEFAULT_PURPOSES) -> dict[str, Purpose]:
    """Purpose → its minimum k, l and the share of records that may be suppressed."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: cannot read the de-identification policy: {exc}") from None
    found = {}
    for name, spec in (data or {}).get("purposes", {}).items():
        if not isinstance(spec, Mapping) or set(spec) - {"min_k", "min_l", "max_suppression"}:
            raise PolicyError(f"{path}: purposes.{name}: expected min_k, min_l, max_suppression")
        purpose = Purpose(str(name), int(spec.get("min_k", 0)), int(spec.get("min_l", 1)),
                          float(spec.get("max_suppression", 0.05)))
        if purpose.min_k < 2 or purpose.min_l < 1 or not 0 <= purpose.max_suppression < 1:
            raise PolicyError(f"{path}: purposes.{name}: min_k ≥ 2, min_l ≥ 1, 0 ≤ max_suppression < 1")
        found[str(name)] = purpose
    return found


@dataclass(frozen=True)
class RiskReport:
    """Re-identification risk of a data set on its quasi-identifiers (GB/T 37964-2019 terms)."""

    quasi_identifiers: tuple[str, ...]
    records: int
    equivalence_classes: int
    k: int  # size of the smallest class (0 for no records)
    unique_records: int  # records alone in their class
    records_below: int  # records in classes smaller than ``target_k``
    target_k: int
    l_diversity: int | None = None  # smallest number of distinct sensitive values in a class
    sensitive: tuple[str, ...] = ()

    @property
    def max_risk(self) -> float:
        """Largest prosecutor re-identification probability, 1/k."""
        return 1.0 / self.k if self.k else 0.0

    @property
    def unique_share(self) -> float:
        return self.unique_records / self.records if self.records else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["quasi_identifiers"] = list(self.quasi_identifiers)
        data["sensitive"] = list(self.sensitive)
        data["max_risk"] = round(self.max_risk, 4)
        data["unique_share"] = round(self.unique_share, 4)
        return data


def _class_sizes(frame: nw.LazyFrame, quasi_identifiers: Sequence[str], sensitive: Sequence[str]) -> nw.DataFrame:
    aggregates = [nw.len().alias("__records")]
    aggregates += [nw.col(s).n_unique().alias(f"__l_{i}") for i, s in enumerate(sensitive)]
    return frame.group_by(list(quasi_identifiers)).agg(*aggregates).collect()


def _report(sizes: nw.DataFrame, quasi_identifiers: Sequence[str], sensitive: Sequence[str], target_k: int,
            min_l: int = 1) -> RiskReport:
    counts = sizes["__records"]
    records = int(counts.sum()) if len(counts) else 0
    diversity = None
    if sensitive and len(counts):
        diversity = min(int(sizes[f"__l_{i}"].min()) for i in range(len(sensitive)))
    return RiskReport(
        quasi_identifiers=tuple(quasi_identifiers), records=records, equivalence_classes=len(counts),
        k=int(counts.min()) if len(counts) else 0, unique_records=int((counts == 1).sum()),
        records_below=int(sizes.filter(_too_small(sensitive, target_k, min_l))["__records"].sum()) if len(counts)
        else 0, target_k=target_k, l_diversity=diversity, sensitive=tuple(sensitive),
    )


def _too_small(sensitive: Sequence[str], k: int, min_l: int) -> nw.Expr:
    small = nw.col("__records") < k
    for i in range(len(sensitive)):
        small = small | (nw.col(f"__l_{i}") < min_l)
    return small


def measure_risk(frame: Any, quasi_identifiers: Sequence[str], sensitive: Sequence[str] = (),
                 *, target_k: int = 5, min_l: int = 1) -> RiskReport:
    """k-anonymity, uniqueness and l-diversity of ``frame`` (narwhals or native, eager or lazy) on the
    quasi-identifiers; ``records_below`` counts records in classes smaller than ``target_k`` (or less diverse
    than ``min_l``)."""
    lazy = nw.from_native(frame) if not isinstance(frame, nw.LazyFrame | nw.DataFrame) else frame
    lazy = lazy.lazy() if isinstance(lazy, nw.DataFrame) else lazy
    missing = [c for c in (*quasi_identifiers, *sensitive) if c not in lazy.collect_schema().names()]
    if missing:
        raise PolicyError(f"re-identification risk: no column(s) {', '.join(missing)}")
    return _report(_class_sizes(lazy, quasi_identifiers, sensitive), quasi_identifiers, sensitive, target_k, min_l)


# ---- generalisation -------------------------------------------------------------------------------------------


def _text(column: str) -> nw.Expr:
    return nw.col(column).cast(nw.String).str.strip_chars()


def _region(value: nw.Expr, level: int) -> nw.Expr:
    """A 6-digit GB/T 2260 code at a level: county as is, prefecture ``3301·00``, province ``33·0000``."""
    if level == 0:
        return value
    if level >= 3:
        return nw.lit(None, dtype=nw.String)
    kept = 4 if level == 1 else 2
    return nw.concat_str(value.str.slice(0, kept), nw.lit("0" * (6 - kept)))


def _year_number(column: str, dtype: Any) -> nw.Expr:
    if isinstance(dtype, nw.Date | nw.Datetime):
        return nw.col(column).dt.year().cast(nw.Int64)
    return _text(column).str.slice(0, 4).cast(nw.Int64)


def _banded(number: nw.Expr, level: int) -> nw.Expr:
    """A year or age as text at a level: ``1985``, ``1985-1989``, ``1980-1989``, suppressed."""
    if level == 0:
        return number.cast(nw.String)
    if level >= 3:
        return nw.lit(None, dtype=nw.String)
    width = _BAND[level]
    start = (number // width) * width
    return nw.concat_str(start.cast(nw.String), nw.lit("-"), (start + width - 1).cast(nw.String))


def _id_number(column: str, region_level: int, birth_level: int) -> nw.Expr:
    """An ID number (full or partially masked) reduced to its region and birth-year parts at the given levels, the
    rest starred: ``330100198*********`` (region at prefecture, birth year to the decade)."""
    value = _text(column)
    region = _region(value.str.slice(0, 6), region_level) if region_level < 3 else nw.lit("******")
    year = value.str.slice(6, 4)
    if birth_level >= 3:
        year = nw.lit("****")
    elif birth_level >= 1:  # the ID can only show a decade: never finer than the year column's band
        year = nw.concat_str(value.str.slice(6, 3), nw.lit("*"))
    return nw.when(value.str.len_chars() >= 10).then(nw.concat_str(region, year, nw.lit("********")))


def generalise(column: str, role: str, levels: Mapping[str, int], dtype: Any) -> nw.Expr:
    """``column`` generalised for its role at the dimensions' ``levels``."""
    if role == "region":
        return _region(_text(column), levels["region"]).alias(column)
    if role == "year":
        return _banded(_year_number(column, dtype), levels["birth"]).alias(column)
    if role == "age":
        return _banded(nw.col(column).cast(nw.Int64), levels["age"]).alias(column)
    if role == "sex":
        return (nw.col(column) if levels["sex"] == 0 else nw.lit(None, dtype=dtype)).alias(column)
    if role == "id_number":
        return _id_number(column, levels["region"], levels["birth"]).alias(column)
    return nw.col(column)


# ---- the operator ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeidentifyConfig:
    purpose: Purpose
    quasi_identifiers: dict[str, str]  # column → role
    sensitive: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any], policy: Path = DEFAULT_PURPOSES) -> DeidentifyConfig:
        unknown = sorted(set(config) - {"purpose", "quasi_identifiers", "sensitive", "min_k", "min_l",
                                        "max_suppression"})
        if unknown:
            raise PolicyError(f"deidentify: unknown key(s) {', '.join(unknown)}; expected purpose, "
                              "quasi_identifiers, sensitive, min_k, min_l, max_suppression")
        known = purposes(policy)
        name = config.get("purpose")
        if name not in known:
            raise PolicyError(f"deidentify: purpose {name!r}: expected one of {', '.join(known)} ({policy})")
        base = known[str(name)]
        qis = config.get("quasi_identifiers")
        if not isinstance(qis, Mapping) or not qis:
            raise PolicyError("deidentify: quasi_identifiers: expected a mapping of column → role")
        for column, role in qis.items():
            if role not in ROLES:
                raise PolicyError(f"deidentify: quasi_identifiers.{column}: role {role!r}: expected one of "
                                  f"{', '.join(ROLES)}")
        sensitive = config.get("sensitive", [])
        if not isinstance(sensitive, list) or not all(isinstance(s, str) for s in sensitive):
            raise PolicyError("deidentify: sensitive: expected a list of column names")
        min_k = int(config.get("min_k", base.min_k))
        min_l = int(config.get("min_l", base.min_l))
        if min_k < base.min_k or min_l < base.min_l:
            raise PolicyError(f"deidentify: purpose {base.name} needs min_k ≥ {base.min_k} and min_l ≥ "
                              f"{base.min_l}; a step may only be stricter")
        if sensitive and min_l < 2:
            min_l = 2  # declaring sensitive attributes asks for diversity
        suppression = float(config.get("max_suppression", base.max_suppression))
        return cls(purpose=Purpose(base.name, min_k, min_l, suppression),
                   quasi_identifiers={str(c): str(r) for c, r in qis.items()}, sensitive=tuple(sensitive))


def _start_level(frame: nw.LazyFrame, config: DeidentifyConfig) -> dict[str, int]:
    """The finest level each dimension can have: a region code already reduced to the prefecture (``…00``) or
    province (``…0000``) upstream puts the region dimension there, so the ID number cannot keep more."""
    start = {dim: 0 for dim in LEVELS}
    regions = [c for c, r in config.quasi_identifiers.items() if r == "region"]
    if regions:
        checks = []
        for column in regions:
            value = _text(column)
            checks += [(value.str.ends_with("00") | value.is_null()).all().alias(f"{column}__2"),
                       (value.str.ends_with("0000") | value.is_null()).all().alias(f"{column}__4")]
        found = frame.select(checks).collect().row(0)
        pairs = list(zip(found[0::2], found[1::2], strict=True))
        start["region"] = max(2 if four else 1 if two else 0 for two, four in pairs)
    return start


def _lattice(dimensions: Sequence[str], start: Mapping[str, int]) -> list[dict[str, int]]:
    """Every combination of levels from ``start``, least generalised first (by height, then suppressing last)."""
    ranges = [range(start[d], len(LEVELS[d])) for d in dimensions]
    combos = [dict(zip(dimensions, levels, strict=True)) for levels in itertools.product(*ranges)]
    return sorted(combos, key=lambda c: (sum(c.values()), sum(v == len(LEVELS[d]) - 1 for d, v in c.items())))


class DeidentifyOperator:
    """Generalise the quasi-identifiers and suppress records until the purpose's minimum k (and l) holds."""

    kind = "deidentify"

    def __init__(self, config: DeidentifyConfig) -> None:
        self.config = config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DeidentifyOperator:
        return cls(DeidentifyConfig.from_mapping(config))

    def run(self, frame: nw.LazyFrame, ctx: OperatorContext) -> OperatorResult:
        cfg, purpose = self.config, self.config.purpose
        schema = frame.collect_schema()
        missing = [c for c in (*cfg.quasi_identifiers, *cfg.sensitive) if c not in schema.names()]
        if missing:
            raise PolicyError(f"{ctx.table}: deidentify names column(s) {', '.join(missing)} it does not have")
        data = ctx.engine.persist(frame)
        qis = list(cfg.quasi_identifiers)
        rows = count_rows(data)
        before = measure_risk(data, qis, cfg.sensitive, target_k=purpose.min_k, min_l=purpose.min_l)
        dimensions = sorted({d for role in cfg.quasi_identifiers.values() for d in ROLES[role]})
        chosen, sizes, suppressed = self._search(data, dimensions, _start_level(data, cfg), rows)
        generalised = data.with_columns([generalise(c, r, chosen, schema[c]) for c, r in cfg.quasi_identifiers.items()])
        small = sizes.filter(_too_small(cfg.sensitive, purpose.min_k, purpose.min_l)).select(qis)
        kept = self._suppress(generalised, small, qis, ctx)
        kept = ctx.engine.persist(kept)
        after = measure_risk(kept, qis, cfg.sensitive, target_k=purpose.min_k, min_l=purpose.min_l)
        status = StepStatus.OK
        if after.records == 0:
            status = StepStatus.FAILED
        elif suppressed > purpose.max_suppression * rows:
            status = StepStatus.WARN
        metrics = {
            "purpose": purpose.name, "min_k": purpose.min_k, "min_l": purpose.min_l,
            "levels": {d: LEVELS[d][chosen[d]] for d in dimensions},
            "records_suppressed": suppressed, "suppression_share": round(suppressed / rows, 4) if rows else 0.0,
            "before": before.to_dict(), "after": after.to_dict(),
        }
        return OperatorResult(frame=kept, rows_in=rows, rows_out=after.records, status=status, metrics=metrics)

    def _search(self, data: nw.LazyFrame, dimensions: Sequence[str], start: Mapping[str, int],
                rows: int) -> tuple[dict[str, int], nw.DataFrame, int]:
        """The least generalised levels whose too-small classes hold at most ``max_suppression`` of the records
        (else the levels suppressing fewest), with their class sizes and the records to suppress."""
        cfg, purpose = self.config, self.config.purpose
        schema = data.collect_schema()
        best: tuple[dict[str, int], nw.DataFrame, int] | None = None
        for levels in _lattice(dimensions, start):
            full = {**{d: 0 for d in LEVELS}, **levels}
            view = data.select([generalise(c, r, full, schema[c]) for c, r in cfg.quasi_identifiers.items()]
                               + [nw.col(s) for s in cfg.sensitive if s not in cfg.quasi_identifiers])
            sizes = _class_sizes(view, list(cfg.quasi_identifiers), cfg.sensitive)
            below = sizes.filter(_too_small(cfg.sensitive, purpose.min_k, purpose.min_l))
            suppressed = int(below["__records"].sum()) if len(below) else 0
            if best is None or suppressed < best[2]:
                best = (full, sizes, suppressed)
            if suppressed <= purpose.max_suppression * rows:
                return full, sizes, suppressed
        assert best is not None
        return best

    @staticmethod
    def _suppress(frame: nw.LazyFrame, small: nw.DataFrame, qis: list[str], ctx: OperatorContext) -> nw.LazyFrame:
        """``frame`` without the records of the classes in ``small`` (null-safe on the quasi-identifiers)."""
        if not len(small):
            return frame
        marker = "__suppress"
        keys = ctx.engine.from_arrow(pa.table({
            **{f"__k{i}": small[q].cast(nw.String).to_arrow() for i, q in enumerate(qis)},
            marker: pa.array([True] * len(small)),
        }))
        tagged = frame.with_columns([nw.col(q).cast(nw.String).fill_null("\x00").alias(f"__k{i}")
                                     for i, q in enumerate(qis)])
        keys = keys.with_columns([nw.col(f"__k{i}").fill_null("\x00") for i in range(len(qis))])
        joined = tagged.join(keys, on=[f"__k{i}" for i in range(len(qis))], how="left")
        return joined.filter(nw.col(marker).is_null()).select(frame.collect_schema().names())


# ---- the catalog of measured risk ------------------------------------------------------------------------------

_RISK_SCHEMA = pa.schema([
    ("table", pa.string()), ("purpose", pa.string()), ("quasi_identifiers", pa.string()), ("records", pa.int64()),
    ("k", pa.int64()), ("l_diversity", pa.int64()), ("unique_records", pa.int64()), ("max_risk", pa.float64()),
    ("records_suppressed", pa.int64()), ("levels", pa.string()), ("run_id", pa.string()),
    ("checked_at", pa.timestamp("us", tz="UTC")),
])


def record_risk(engine: Engine, settings: Settings, table: str, purpose: str, report: RiskReport,
                metrics: Mapping[str, Any] | None = None, *, run_id: str = "") -> None:
    """Append one measurement to ``lake/catalog/deidentification_risk`` (one row per extract run or export)."""
    extra = metrics or {}
    row = {
        "table": table, "purpose": purpose, "quasi_identifiers": ",".join(report.quasi_identifiers),
        "records": report.records, "k": report.k, "l_diversity": report.l_diversity,
        "unique_records": report.unique_records, "max_risk": round(report.max_risk, 6),
        "records_suppressed": int(extra.get("records_suppressed", 0)),
        "levels": ",".join(f"{d}={v}" for d, v in dict(extra.get("levels", {})).items()), "run_id": run_id,
        "checked_at": datetime.now(UTC),
    }
    _append_risk(engine, settings, row)


def record_step_risk(engine: Engine, settings: Settings, table: str, metrics: Mapping[str, Any],
                     *, run_id: str = "") -> None:
    """Record what a ``deidentify`` step reported (its metrics) for the extract ``table`` it produced."""
    after = dict(metrics["after"])
    report = RiskReport(
        quasi_identifiers=tuple(after["quasi_identifiers"]), records=after["records"],
        equivalence_classes=after["equivalence_classes"], k=after["k"], unique_records=after["unique_records"],
        records_below=after["records_below"], target_k=after["target_k"], l_diversity=after["l_diversity"],
        sensitive=tuple(after["sensitive"]),
    )
    record_risk(engine, settings, table, str(metrics["purpose"]), report, metrics, run_id=run_id)


def _append_risk(engine: Engine, settings: Settings, row: Mapping[str, Any]) -> None:
    location = str(settings.table_path(*RISK_TABLE))
    engine.append(engine.from_arrow(pa.Table.from_pylist([dict(row)], schema=_RISK_SCHEMA)), location,
                  metadata={"writer": "medlake.security.deidentify", "table": str(row["table"])})


def risk_history(engine: Engine, settings: Settings, table: str | None = None) -> list[dict[str, Any]]:
    """Recorded measurements (of ``table``, or all), newest first."""
    location = str(settings.table_path(*RISK_TABLE))
    if not engine.exists(location):
        return []
    rows = engine.to_arrow(engine.read(location)).to_pylist()
    return sorted((r for r in rows if table is None or r["table"] == table), key=lambda r: r["checked_at"],
                  reverse=True)



# ---- consistency of the masking rules across columns -----------------------------------------------------------

# What a partially masked ID number keeps (region code of the county, birth year), and the column that carries each.
_ID_REVEALS = (("region", "region_code", "prefecture"), ("birth", "birth_date", "year"))


def mask_inconsistencies(steps: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Where a workflow's masking lets one column reveal what another generalises or removes: a ``partial`` ID
    number keeps the county code and the birth year, so a region code generalised beyond the county (or removed)
    and a birth date removed are given away by it, unless a later ``deidentify`` step declares the ID number with
    role ``id_number`` (which generalises its parts with those columns). ``steps``: (operator, config) in order."""
    from medlake.masking import MaskConfig

    found: list[str] = []
    for index, (kind, config) in enumerate(steps):
        if kind != "mask":
            continue
        rules = {r.column: r for r in MaskConfig.from_mapping(config).rules}
        later = [c for k, c in steps[index + 1:] if k == "deidentify"]
        for column, rule in rules.items():
            if rule.method != "partial" or rule.format != "id_number":
                continue
            if any(dict(c.get("quasi_identifiers", {})).get(column) == "id_number" for c in later):
                continue
            for part, other, coarser in _ID_REVEALS:
                companion = rules.get(other)
                if companion is None:
                    continue
                if companion.method in ("drop", "hash") or (part == "region" and companion.format == coarser):
                    found.append(f"steps[{index}]: {column} (partial) keeps the {LEVELS[part][0]} of {part} that "
                                 f"{other} ({companion.method}) does not release")
    return found
