"""Validate OpenLineage events against the official JSON schemas shipped in ``medlake/lineage/spec/``.

The core schema checks the event envelope; every facet is then checked against the schema its ``_schemaURL``
names (as OpenLineage's own spec tests do). All ``$ref``s resolve from the local files — no network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable

from medlake.lineage.errors import EventValidationError

__all__ = ["SPEC_DIR", "event_errors", "validate_event", "validate_events_file"]

SPEC_DIR = Path(__file__).with_name("spec")
_CORE_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


@lru_cache(maxsize=1)
def _registry() -> Registry:
    resources = []
    for path in [SPEC_DIR / "OpenLineage.json", *sorted((SPEC_DIR / "facets").glob("*.json"))]:
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


@lru_cache(maxsize=256)
def _validator(schema_url: str) -> Draft202012Validator:
    _registry().resolver().lookup(schema_url)  # raises Unresolvable for a schema we do not ship
    return Draft202012Validator(
        {"$ref": schema_url}, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _facet_groups(event: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield "run.facets", (event.get("run") or {}).get("facets") or {}
    yield "job.facets", (event.get("job") or {}).get("facets") or {}
    for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        for i, dataset in enumerate(event.get(side) or []):
            yield f"{side}[{i}].facets", dataset.get("facets") or {}
            yield f"{side}[{i}].{extra}", dataset.get(extra) or {}


def _messages(validator: Draft202012Validator, instance: Any, where: str) -> list[str]:
    def path_of(error: ValidationError) -> str:
        return ".".join(str(p) for p in error.absolute_path)

    return [
        f"{where}{'.' + path_of(e) if path_of(e) else ''}: {e.message}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    ]


def event_errors(event: Mapping[str, Any], *, allow_unknown_facets: bool = False) -> list[str]:
    """Every schema violation of one event (as a JSON dict), each naming its path; empty when valid."""
    schema_url = str(event.get("schemaURL") or f"{_CORE_ID}#/$defs/RunEvent")
    if not schema_url.startswith("https://openlineage.io/spec/2-"):
        return [f"schemaURL {schema_url!r}: only OpenLineage 2.x events are supported"]
    errors = _messages(_validator(schema_url), event, "event")
    for where, facets in _facet_groups(event):
        for key, facet in facets.items():
            facet_url = facet.get("_schemaURL", "") if isinstance(facet, Mapping) else ""
            try:
                validator = _validator(facet_url)
            except Unresolvable:
                if not allow_unknown_facets:
                    errors.append(f"{where}.{key}: facet schema {facet_url!r} is not a known OpenLineage facet")
                continue
            errors.extend(_messages(validator, facet, f"{where}.{key}"))
    return errors


def validate_event(event: Mapping[str, Any], *, source: str = "event") -> None:
    """Raise EventValidationError naming ``source`` and every violation."""
    errors = event_errors(event)
    if errors:
        raise EventValidationError(f"{source}: " + "; ".join(errors))


def validate_events_file(path: Path) -> int:
    """Validate every line of a JSON-lines event file; return the number of events. Errors name file:line."""
    count = 0
    problems: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{line_no}: not JSON ({exc.msg})")
                continue
            problems.extend(f"{path}:{line_no}: {msg}" for msg in event_errors(event))
            count += 1
    if problems:
        more = f" (+{len(problems) - 20} more)" if len(problems) > 20 else ""
        raise EventValidationError("; ".join(problems[:20]) + more)
    return count
