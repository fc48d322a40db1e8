"""Workflow YAML → validated ``WorkflowSpec``: source table → chain of operators → target table.

Errors name the file, the line and what was expected, e.g.::

    workflows/drugs.yaml:9: steps[1].operator: unknown operator 'mask2'; expected one of transcode, mask, ...
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from medlake.errors import ConfigurationError
from medlake.workflows.errors import WorkflowError
from medlake.workflows.registry import OPERATORS, build_operator
from medlake.workflows.templates import SCENARIOS
from medlake.workflows.yaml_nodes import Path_, line_of, read_located

__all__ = ["SCENARIOS", "StepSpec", "WorkflowSpec", "load_workflow", "load_workflows"]

_TABLE = r"^[a-z][a-z0-9_]*/[a-z][a-z0-9_]*$"
_TABLE_HINT = "a lake table written layer/name, e.g. dwd/order_item"
_NAME = r"^[a-z][a-z0-9_]*$"


class StepSpec(BaseModel):
    """One step: ``operator`` names the kind; every other key is that operator's configuration."""

    model_config = ConfigDict(extra="allow", frozen=True)

    operator: str = Field(description=f"an operator kind: {', '.join(OPERATORS)}")
    _line: int = PrivateAttr(default=0)

    @field_validator("operator")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in OPERATORS:
            raise ValueError(f"unknown operator {value!r}; expected one of {', '.join(OPERATORS)}")
        return value

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def line(self) -> int:
        return self._line


class WorkflowSpec(BaseModel):
    """A workflow file, validated. ``file`` and ``line_of`` say where each part was written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME, description="a lower-case identifier, e.g. hospital_drug_transcode")
    scenario: Literal["hospital", "health_commission", "cdc", "insurance"] = Field(
        description=f"one of {', '.join(SCENARIOS)}"
    )
    description: str = Field(default="", description="a sentence for the Dagster UI")
    source: str = Field(pattern=_TABLE, description=_TABLE_HINT)
    steps: list[StepSpec] = Field(min_length=1, description="a list of steps, each a mapping with 'operator'")
    target: str = Field(pattern=_TABLE, description=_TABLE_HINT + " (e.g. governed/order_item_national)")
    group: str | None = Field(default=None, pattern=_NAME, description="a Dagster group name (lower-case)")
    owner: str | None = Field(
        default=None, pattern=r"^(team:[A-Za-z0-9_.-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$",
        description="an e-mail address or team:<name>",
    )
    write: Literal["overwrite", "merge"] = Field(default="overwrite", description="overwrite or merge")
    merge_keys: list[str] = Field(default_factory=list, description="the key columns a merge matches on")

    _file: str = PrivateAttr(default="")
    _lines: dict[Path_, int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _merge_needs_keys(self) -> WorkflowSpec:
        if self.write == "merge" and not self.merge_keys:
            raise ValueError("write: merge needs merge_keys: [column, ...]")
        if self.source == self.target:
            raise ValueError("target must differ from source")
        return self

    @property
    def file(self) -> str:
        return self._file

    def line_of(self, *path: str | int) -> int | None:
        return line_of(self._lines, path)

    @property
    def source_parts(self) -> tuple[str, str]:
        layer, name = self.source.split("/")
        return layer, name

    @property
    def target_parts(self) -> tuple[str, str]:
        layer, name = self.target.split("/")
        return layer, name


def _where(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _field_hint(loc: tuple[Any, ...]) -> str:
    model: Any = StepSpec if len(loc) >= 2 and loc[0] == "steps" else WorkflowSpec
    name = loc[-1] if loc else ""
    info = model.model_fields.get(name) if isinstance(name, str) else None
    return info.description if info is not None and info.description else ""


def _message(error: dict[str, Any]) -> str:
    loc, kind = tuple(error["loc"]), error["type"]
    hint = _field_hint(loc)
    if kind == "missing":
        return f"missing key {loc[-1]!r}; expected {hint}" if hint else f"missing key {loc[-1]!r}"
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}; expected one of {', '.join(WorkflowSpec.model_fields)}"
    msg = str(error["msg"]).removeprefix("Value error, ")
    if kind in ("string_pattern_mismatch", "string_type", "list_type", "too_short", "model_type", "dict_type"):
        got = error.get("input")
        return f"got {got!r}; expected {hint}" if hint else msg
    return msg


def _validation_error(exc: ValidationError, file: str, lines: dict[Path_, int]) -> WorkflowError:
    found = [
        (line_of(lines, tuple(e["loc"])), _where(tuple(e["loc"])), _message(dict(e))) for e in exc.errors()
    ]
    first_line, first_where, first_msg = found[0]
    more = "".join(f"\n{file}:{line}: {where}: {msg}" for line, where, msg in found[1:])
    return WorkflowError(first_msg + more, file=file, line=first_line, where=first_where)


def _config_line(lines: dict[Path_, int], step: int, message: str) -> int | None:
    """The line of the deepest key of step ``step`` that the operator's message mentions."""
    best: tuple[int, int] | None = None
    for path, line in lines.items():
        if len(path) > 2 and path[:2] == ("steps", step):
            dotted = ".".join(str(p) for p in path[2:])
            if re.search(rf"(?<![\w.]){re.escape(dotted)}(?![\w])", message) and (best is None or len(
                path) > best[0]):
                best = (len(path), line)
    return best[1] if best else line_of(lines, ("steps", step))


def _check_operators(spec: WorkflowSpec, lines: dict[Path_, int]) -> None:
    """Build each operator once so a bad configuration fails at load, on its line."""
    for i, step in enumerate(spec.steps):
        try:
            build_operator(step.operator, step.config)
        except (ConfigurationError, TypeError, ValueError) as exc:
            raise WorkflowError(
                f"{step.operator}: {exc}", file=spec.file, line=_config_line(lines, i, str(exc)),
                where=f"steps[{i}]",
            ) from None


def load_workflow(path: str | Path, *, check_operators: bool = True) -> WorkflowSpec:
    """Read and validate one workflow file."""
    path = Path(path)
    data, lines = read_located(path)
    file = str(path)
    if not isinstance(data, dict):
        raise WorkflowError("expected a mapping with name, scenario, source, steps, target", file=file, line=1)
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, file, lines) from None
    spec._file = file
    spec._lines = lines
    for i, step in enumerate(spec.steps):
        step._line = lines.get(("steps", i), 0)
    if check_operators:
        _check_operators(spec, lines)
    return spec


def load_workflows(directory: str | Path, *, check_operators: bool = True) -> list[WorkflowSpec]:
    """Every ``*.yaml`` / ``*.yml`` below ``directory``, sorted by path; names and targets must be unique."""
    root = Path(directory)
    if not root.is_dir():
        raise WorkflowError("expected a folder of workflow files", file=str(root))
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    specs = [load_workflow(p, check_operators=check_operators) for p in files]
    for attribute in ("name", "target"):
        first: dict[str, WorkflowSpec] = {}
        for spec in specs:
            value = getattr(spec, attribute)
            if value in first:
                raise WorkflowError(
                    f"{attribute} {value!r} is also used by {first[value].file}; expected unique {attribute}s",
                    file=spec.file, line=spec.line_of(attribute), where=attribute,
                )
            first[value] = spec
    return specs
