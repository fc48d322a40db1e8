"""Configured query services: a YAML file declares named services over lake tables, each becomes an endpoint with
its own request schema. Parameters are typed and bound to column filters (narwhals expressions); no SQL is built
from request text."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import narwhals as nw
import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from medlake.config import Settings
from medlake.engine.base import Engine
from medlake.errors import ConfigurationError
from medlake.services.problems import ServiceError
from medlake.services.users import ROLES

__all__ = ["DEFAULT_SERVICES_FILE", "ParameterSpec", "QueryService", "ServiceSpec", "load_services"]

DEFAULT_SERVICES_FILE = Path(__file__).with_name("services.yaml")
_CHINA = timezone(timedelta(hours=8))  # lake times are local (UTC+8) wall-clock times
_TYPES: dict[str, type] = {"string": str, "integer": int, "number": float, "date": date, "datetime": datetime,
                           "boolean": bool}
_MAX_OFFSET = 100_000


class ParameterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["string", "integer", "number", "date", "datetime", "boolean"]
    column: str | None = None
    op: Literal["eq", "ge", "le", "in"] = "eq"
    required: bool = False
    description: str = ""
    max_length: int = Field(default=128, ge=1, le=4096)
    max_items: int = Field(default=50, ge=1, le=1000)
    minimum: float | None = None
    maximum: float | None = None


class ServiceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    table: str = Field(pattern=r"^[a-z_]+\.[a-z0-9_]+$")
    columns: list[str] = Field(default_factory=list)
    order_by: list[str] = Field(default_factory=list)
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    roles: list[Literal["clinician", "analyst", "fund_supervisor", "cdc_officer", "data_steward", "admin"]]
    row_limit: int = Field(default=1000, ge=1, le=100_000)
    masking: Literal["grade", "grade_without_grants"] = "grade"


def _annotation(spec: ParameterSpec) -> Any:
    base = _TYPES[spec.type]
    constraints: dict[str, Any] = {"description": spec.description or None}
    if spec.type == "string":
        constraints["max_length"] = spec.max_length
        constraints["min_length"] = 1
    if spec.type in ("integer", "number"):
        constraints["ge"] = spec.minimum
        constraints["le"] = spec.maximum
    item = Annotated[base, Field(**{k: v for k, v in constraints.items() if v is not None and k != "description"})]
    if spec.op == "in":
        return Annotated[list[item], Field(min_length=1, max_length=spec.max_items,  # type: ignore[valid-type]
                                           description=spec.description or None)]
    return Annotated[item, Field(description=spec.description or None)]  # type: ignore[valid-type]


def _request_model(name: str, spec: ServiceSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for parameter, declared in spec.parameters.items():
        annotation = _annotation(declared)
        fields[parameter] = (annotation, ...) if declared.required else (annotation | None, None)
    fields["limit"] = (int, Field(default=min(100, spec.row_limit), ge=1, le=spec.row_limit))
    fields["offset"] = (int, Field(default=0, ge=0, le=_MAX_OFFSET))
    title = "".join(part.capitalize() for part in name.split("_")) + "Request"
    return create_model(title, __config__=ConfigDict(extra="forbid"), **fields)


def _literal(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(_CHINA).replace(tzinfo=None)
    return value


class QueryService:
    """One configured service: its request model and how a request becomes a filtered read of its table."""

    def __init__(self, name: str, spec: ServiceSpec) -> None:
        self.name = name
        self.spec = spec
        self.request_model = _request_model(name, spec)

    @property
    def layer_and_table(self) -> tuple[str, str]:
        layer, _, table = self.spec.table.partition(".")
        return layer, table

    def run(self, engine: Engine, settings: Settings, request: BaseModel) -> tuple[pa.Table, bool]:
        """The rows this request selects (at most ``limit``, after ``offset``) and whether more follow."""
        path = str(settings.table_path(*self.layer_and_table))
        if not engine.exists(path):
            raise ServiceError(503, "Lake table missing", f"{self.spec.table} does not exist yet")
        frame = engine.read(path)
        available = set(frame.collect_schema().names())
        missing = sorted({*self.spec.columns, *self.spec.order_by,
                          *(p.column or n for n, p in self.spec.parameters.items())} - available)
        if missing:
            raise ServiceError(503, "Service misconfigured",
                               f"service {self.name}: {self.spec.table} has no column(s) {', '.join(missing)}")
        values = request.model_dump(exclude={"limit", "offset"}, exclude_none=True)
        for parameter, value in values.items():
            declared = self.spec.parameters[parameter]
            column = nw.col(declared.column or parameter)
            literal = [_literal(v) for v in value] if isinstance(value, list) else _literal(value)
            frame = frame.filter({"eq": lambda c, v: c == v, "ge": lambda c, v: c >= v, "le": lambda c, v: c <= v,
                                  "in": lambda c, v: c.is_in(v)}[declared.op](column, literal))
        if self.spec.columns:
            frame = frame.select(self.spec.columns)
        if self.spec.order_by:
            frame = frame.sort(self.spec.order_by, nulls_last=True)
        limit, offset = request.limit, request.offset  # type: ignore[attr-defined]
        found = engine.to_arrow(frame.head(offset + limit + 1)).slice(offset)
        return found.slice(0, limit), found.num_rows > limit


def load_services(settings: Settings) -> dict[str, QueryService]:
    """The services of ``MEDLAKE_SERVICES_FILE`` (default: the packaged ``services.yaml``), validated."""
    path = Path(settings.serve.services_file) if settings.serve.services_file else DEFAULT_SERVICES_FILE
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"{path}: cannot read services: {exc}") from None
    entries = document.get("services") if isinstance(document, Mapping) else None
    if not isinstance(entries, Mapping):
        raise ConfigurationError(f"{path}: expected a mapping 'services: {{name: spec}}'")
    services = {}
    for name, raw in entries.items():
        if not isinstance(name, str) or not name.replace("_", "").isalnum() or not name.islower():
            raise ConfigurationError(f"{path}: service name {name!r}: expected lower_case_with_underscores")
        try:
            spec = ServiceSpec.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"{path}: services.{name}: {problems}") from None
        unknown = sorted(set(spec.roles) - set(ROLES))
        if unknown:
            raise ConfigurationError(f"{path}: services.{name}.roles: unknown {', '.join(unknown)}")
        services[name] = QueryService(name, spec)
    return services
