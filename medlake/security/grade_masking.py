"""Masking by grade: what leaves the platform (responses, exports, extracts) shows a column as stored only when the
caller's role is cleared for the column's grade or the caller holds an active grant covering it; every other
column gets its grade's method from the policy, built from the mask operator's rules (``medlake.masking``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import narwhals as nw
import yaml

from medlake.masking import MaskConfig, MaskingConfigError
from medlake.masking.hashing import hash_columns
from medlake.masking.rules import GENERALIZERS, PARTIAL_MASKS
from medlake.security.classification import ColumnClass
from medlake.security.errors import PolicyError
from medlake.security.grants import Grant

__all__ = [
    "DEFAULT_POLICY",
    "GRADE_METHODS",
    "ROLES",
    "GradePolicy",
    "MaskedFrame",
    "default_policy",
    "mask_by_grade",
]

DEFAULT_POLICY = Path(__file__).with_name("policy.yaml")
ROLES = ("clinician", "analyst", "fund_supervisor", "cdc_officer", "data_steward", "admin")
GRADE_METHODS = ("keep", "generalize", "partial", "hash", "suppress")
GradeMethod = Literal["keep", "generalize", "partial", "hash", "suppress"]
_PARTIAL_FORMAT = {"id_number": "id_number", "mobile": "phone", "landline": "phone", "person_name": "name"}


@dataclass(frozen=True)
class GradePolicy:
    """Role → clearance (highest grade seen unmasked), grade → masking method, and the grade of unclassified
    columns."""

    clearance: Mapping[str, int]
    methods: Mapping[int, GradeMethod]
    unclassified_grade: int = 4
    source: str = ""

    @classmethod
    def from_mapping(cls, data: Any, source: str = "policy") -> GradePolicy:
        if not isinstance(data, Mapping) or set(data) - {"roles", "grades", "unclassified_grade"}:
            raise PolicyError(f"{source}: expected a mapping with roles, grades, unclassified_grade")
        roles, grades = data.get("roles"), data.get("grades")
        if not isinstance(roles, Mapping) or not roles:
            raise PolicyError(f"{source}: roles: expected a mapping of role → clearance grade (0 … 5)")
        clearance = {}
        for role, grade in roles.items():
            if not isinstance(grade, int) or not 0 <= grade <= 5:
                raise PolicyError(f"{source}: roles.{role}: clearance {grade!r}: expected 0 … 5")
            clearance[str(role)] = grade
        missing = [r for r in ROLES if r not in clearance]
        if missing:
            raise PolicyError(f"{source}: roles: missing {', '.join(missing)}")
        if not isinstance(grades, Mapping) or sorted(grades) != [1, 2, 3, 4, 5]:
            raise PolicyError(f"{source}: grades: expected a method for each grade 1 … 5")
        for grade, method in grades.items():
            if method not in GRADE_METHODS:
                raise PolicyError(f"{source}: grades.{grade}: {method!r}: expected one of {', '.join(GRADE_METHODS)}")
        unclassified = data.get("unclassified_grade", 4)
        if not isinstance(unclassified, int) or not 1 <= unclassified <= 5:
            raise PolicyError(f"{source}: unclassified_grade {unclassified!r}: expected 1 … 5")
        return cls(clearance=clearance, methods=dict(grades), unclassified_grade=unclassified, source=source)

    @classmethod
    def load(cls, path: Path | str = DEFAULT_POLICY) -> GradePolicy:
        location = Path(path)
        try:
            data = yaml.safe_load(location.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise PolicyError(f"{location}: cannot read the masking policy: {exc}") from None
        return cls.from_mapping(data, str(location))

    def clearance_of(self, role: str) -> int:
        if role not in self.clearance:
            raise PolicyError(f"{self.source or 'policy'}: unknown role {role!r}; expected one of "
                              f"{', '.join(self.clearance)}")
        return self.clearance[role]


@lru_cache(maxsize=1)
def default_policy() -> GradePolicy:
    """The shipped policy (``medlake/security/policy.yaml``)."""
    return GradePolicy.load(DEFAULT_POLICY)


@dataclass(frozen=True)
class MaskedFrame:
    """The masked frame (same kind as the input), the columns left as stored, each masked column's method, and the
    grants that unmasked a column (for the audit record)."""

    frame: Any
    unmasked: tuple[str, ...]
    methods: dict[str, str] = field(default_factory=dict)
    grants_used: tuple[str, ...] = ()


def _format(column: str, pii_type: str | None, method: str) -> str | None:
    """The mask operator's format for ``partial``/``generalize`` of this column, or None when it has none."""
    if method == "partial" and pii_type in _PARTIAL_FORMAT:
        return _PARTIAL_FORMAT[pii_type]
    try:
        return MaskConfig.from_mapping({"columns": {column: method}}).rules[0].format
    except MaskingConfigError:
        return None


def _plan(column: str, pii_type: str | None, method: GradeMethod, dtype: Any) -> tuple[str, nw.Expr | None]:
    """(method actually used, expression; None for hash, done afterwards on whole columns)."""
    if method == "keep":
        return "keep", nw.col(column)
    if method == "suppress":
        return "suppress", nw.lit(None, dtype=nw.String).alias(column)
    if method == "partial":
        fmt = _format(column, pii_type, "partial")
        if fmt is not None:
            return f"partial:{fmt}", PARTIAL_MASKS[fmt](column).alias(column)
        method = "generalize"
    if method == "generalize":
        fmt = "year" if isinstance(dtype, nw.Date | nw.Datetime) else _format(column, pii_type, "generalize")
        if fmt is not None:
            return f"generalize:{fmt}", GENERALIZERS[fmt](column, dtype).alias(column)
    return "hash", None


def _as_lazy(frame: Any) -> tuple[nw.LazyFrame, str]:
    """The frame as a narwhals LazyFrame and what kind it came as (to give the same kind back)."""
    if isinstance(frame, nw.LazyFrame):
        return frame, "nw-lazy"
    if isinstance(frame, nw.DataFrame):
        return frame.lazy(), "nw-eager"
    wrapped = nw.from_native(frame)
    if isinstance(wrapped, nw.DataFrame):
        return wrapped.lazy(), "native-eager"
    return wrapped, "native-lazy"


def _give_back(frame: nw.LazyFrame, kind: str) -> Any:
    if kind == "nw-lazy":
        return frame
    if kind == "nw-eager":
        return frame.collect()
    return nw.to_native(frame.collect() if kind == "native-eager" else frame)


def mask_by_grade(
    frame: Any,
    classes: Mapping[str, ColumnClass],
    role: str,
    grants: Sequence[Grant] = (),
    salt: str = "",
    *,
    policy: GradePolicy | None = None,
    resource: str | None = None,
    at: datetime | None = None,
) -> MaskedFrame:
    """Mask ``frame`` (narwhals or native polars/Spark, eager or lazy) for a caller with ``role`` holding ``grants``.

    A column is left as stored when the role's clearance covers its grade (``classes[column].grade``; unclassified
    columns have the policy's ``unclassified_grade``) or an active grant on ``resource`` (default: the column's
    table) covers that grade; otherwise its grade's method applies. ``salt`` is needed when a column is hashed."""
    active = policy or default_policy()
    clearance = active.clearance_of(role)
    lazy, kind = _as_lazy(frame)
    schema = lazy.collect_schema()
    exprs: list[nw.Expr] = []
    hashed: list[str] = []
    unmasked: list[str] = []
    methods: dict[str, str] = {}
    used: set[str] = set()
    for column in schema.names():
        cls = classes.get(column)
        grade = cls.grade if cls else active.unclassified_grade
        target = resource or (cls.table if cls else None)
        grant = next((g for g in grants if target is not None and g.covers(target, grade, at)), None)
        if grade <= clearance or grant is not None:
            exprs.append(nw.col(column))
            unmasked.append(column)
            if grant is not None and grade > clearance:
                used.add(grant.grant_id)
            continue
        method, expr = _plan(column, cls.pii_type if cls else None, active.methods[grade], schema[column])
        if method == "keep":
            unmasked.append(column)
        else:
            methods[column] = method
        exprs.append(expr if expr is not None else nw.col(column))
        if expr is None:
            hashed.append(column)
    if hashed and not salt:
        raise PolicyError(f"masking {', '.join(hashed)} by hash needs a salt; none was given")
    masked = hash_columns(lazy.select(exprs), hashed, salt)
    return MaskedFrame(_give_back(masked, kind), tuple(unmasked), methods, tuple(sorted(used)))
