"""The ``mask`` operator: per-column de-identification (keep, hash, partial, generalize, drop).

YAML::

    - operator: mask
      salt_env: MEDLAKE_MASK_SALT      # names the secret holding the salt (never written in YAML): the caller
                                       # gives it in OperatorContext.secrets (Dagster: the lake resource's EnvVar)
      default: keep                    # columns not listed: keep or drop
      columns:
        patient_id: hash
        name: partial                  # format inferred from the column name: id_number / phone / name
        id_number: {method: partial, format: id_number}
        birth_date: generalize         # date → year; region code → prefecture
        region_code: {method: generalize, format: prefecture}
        address: drop
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import narwhals as nw

from medlake.masking.errors import MaskingConfigError, MaskingError
from medlake.masking.rules import GENERALIZERS, PARTIAL_MASKS
from medlake.operators.base import OperatorContext, OperatorResult, count_rows

__all__ = ["METHODS", "ColumnRule", "MaskConfig", "MaskOperator"]

METHODS = ("keep", "hash", "partial", "generalize", "drop")
Method = Literal["keep", "hash", "partial", "generalize", "drop"]
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARTIAL_HINTS = (("id_number", "id_number"), ("id_no", "id_number"), ("idcard", "id_number"),
                  ("phone", "phone"), ("mobile", "phone"), ("tel", "phone"), ("name", "name"))
_GENERAL_HINTS = (("region", "prefecture"), ("date", "year"), ("birth", "year"), ("time", "year"))


@dataclass(frozen=True)
class ColumnRule:
    column: str
    method: Method
    format: str | None = None  # partial: id_number|phone|name; generalize: year|prefecture


def _infer(column: str, hints: tuple[tuple[str, str], ...]) -> str | None:
    lowered = column.lower()
    return next((fmt for hint, fmt in hints if hint in lowered), None)


def _rule(column: str, spec: Any) -> ColumnRule:
    if isinstance(spec, str):
        spec = {"method": spec}
    if not isinstance(spec, Mapping) or set(spec) - {"method", "format"} or "method" not in spec:
        raise MaskingConfigError(f"mask: columns.{column}: expected a method name or {{method: ..., format: ...}}")
    method, fmt = spec["method"], spec.get("format")
    if method not in METHODS:
        raise MaskingConfigError(f"mask: columns.{column}: method {method!r}: expected one of {', '.join(METHODS)}")
    if method == "partial":
        fmt = fmt or _infer(column, _PARTIAL_HINTS)
        if fmt not in PARTIAL_MASKS:
            raise MaskingConfigError(
                f"mask: columns.{column}: partial needs format: one of {', '.join(PARTIAL_MASKS)}"
            )
    elif method == "generalize":
        fmt = fmt or _infer(column, _GENERAL_HINTS)
        if fmt not in GENERALIZERS:
            raise MaskingConfigError(
                f"mask: columns.{column}: generalize needs format: one of {', '.join(GENERALIZERS)}"
            )
    elif fmt is not None:
        raise MaskingConfigError(f"mask: columns.{column}: method {method} takes no format")
    return ColumnRule(column, method, fmt)


@dataclass(frozen=True)
class MaskConfig:
    rules: tuple[ColumnRule, ...]
    salt_env: str | None = None
    default: Literal["keep", "drop"] = "keep"

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> MaskConfig:
        if "salt" in config:
            raise MaskingConfigError(
                "mask: 'salt' must not be written in YAML; give salt_env: the name of an environment variable"
            )
        unknown = sorted(set(config) - {"columns", "salt_env", "default"})
        if unknown:
            raise MaskingConfigError(f"mask: unknown key(s) {', '.join(unknown)}; expected columns, salt_env, default")
        columns = config.get("columns")
        if not isinstance(columns, Mapping) or not columns:
            raise MaskingConfigError("mask: columns: expected a mapping of column name → method")
        rules = tuple(_rule(str(name), spec) for name, spec in columns.items())
        salt_env = config.get("salt_env")
        if salt_env is not None and not (isinstance(salt_env, str) and _ENV_NAME.match(salt_env)):
            raise MaskingConfigError(f"mask: salt_env {salt_env!r}: expected an environment variable name")
        if salt_env is None and any(r.method == "hash" for r in rules):
            raise MaskingConfigError("mask: hash needs salt_env: the environment variable holding the salt")
        default = config.get("default", "keep")
        if default not in ("keep", "drop"):
            raise MaskingConfigError(f"mask: default {default!r}: expected keep or drop")
        return cls(rules=rules, salt_env=salt_env, default=default)


class MaskOperator:
    """Applies the column rules as expressions of the frame's engine (hashing: the engine's ``hash_columns``)."""

    kind = "mask"

    def __init__(self, config: MaskConfig) -> None:
        self.config = config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MaskOperator:
        return cls(MaskConfig.from_mapping(config))

    def _salt(self, ctx: OperatorContext) -> str:
        name = self.config.salt_env or ""
        salt = ctx.secrets.get(name, "")
        if not salt:
            raise MaskingError(f"mask: secret {name} (salt_env) was not given: set environment variable {name} "
                               "(the lake resource binds it as a Dagster EnvVar) or pass it in secrets=")
        return salt

    def run(self, frame: nw.LazyFrame, ctx: OperatorContext) -> OperatorResult:
        schema = frame.collect_schema()
        names = schema.names()
        listed = {r.column: r for r in self.config.rules}
        missing = [c for c in listed if c not in names]
        if missing:
            raise MaskingError(f"{ctx.table}: mask lists column(s) {', '.join(missing)} it does not have")
        unlisted = "drop" if self.config.default == "drop" else "keep"
        rules = [listed.get(c, ColumnRule(c, unlisted)) for c in names]
        exprs = [_expression(r, schema[r.column]) for r in rules if r.method != "drop"]
        hashed = [r.column for r in rules if r.method == "hash"]
        salt = self._salt(ctx) if hashed else ""
        masked = ctx.engine.hash_columns(frame.select(exprs), hashed, salt)  # stays in the engine
        rows = count_rows(frame)
        return OperatorResult(
            frame=masked, rows_in=rows, rows_out=rows,
            metrics={
                "methods": {r.column: r.method + (f":{r.format}" if r.format else "") for r in rules
                            if r.method != "keep"},
                "columns_dropped": sum(r.method == "drop" for r in rules),
                "columns_out": len(exprs),
            },
        )


def _expression(rule: ColumnRule, dtype: Any) -> nw.Expr:
    if rule.method == "partial":
        return PARTIAL_MASKS[str(rule.format)](rule.column).alias(rule.column)
    if rule.method == "generalize":
        return GENERALIZERS[str(rule.format)](rule.column, dtype).alias(rule.column)
    return nw.col(rule.column)  # keep, and hash (done afterwards on the whole column)
