"""Operator kinds named in workflow YAML → their classes, imported only when a workflow uses them (the operators'
libraries are heavy: Splink, Soda, pypinyin).

An operator class has ``kind`` and ``run(frame, ctx)`` (``medlake.operators.base.Operator``) and is built from its
step mapping by ``from_config(mapping)`` when it has one, else by ``cls(**mapping)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from medlake.operators.base import Operator
from medlake.workflows.errors import WorkflowError

__all__ = ["OPERATORS", "build_operator", "operator_class"]

OPERATORS: dict[str, str] = {
    "transcode": "medlake.transcode:TranscodeOperator",
    "mask": "medlake.masking:MaskOperator",
    "quality": "medlake.quality:QualityOperator",
    "empi": "medlake.empi:EmpiOperator",
    "deidentify": "medlake.security.deidentify:DeidentifyOperator",
}


def operator_class(kind: str) -> type[Any]:
    """The class registered for ``kind``."""
    target = OPERATORS.get(kind)
    if target is None:
        raise WorkflowError(f"unknown operator {kind!r}; expected one of {', '.join(OPERATORS)}")
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


def build_operator(kind: str, config: Mapping[str, Any]) -> Operator:
    """An operator instance from the step's configuration (the step mapping without ``operator``)."""
    cls = operator_class(kind)
    factory = getattr(cls, "from_config", None)
    operator = factory(dict(config)) if callable(factory) else cls(**config)
    return operator  # type: ignore[no-any-return]
