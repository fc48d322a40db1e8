"""A sensor that notices a changed standard and re-materializes exactly what the change affects.

Cursor = content hash of the standards files (plus the active version). On a change it asks the lead's ``diff``
for what changed, runs :func:`medlake.lineage.impact.impact` on the lineage graph of the new version, and requests
one run of the affected assets — plus the check-regeneration assets when checks are affected. Where the standards
and the lake are comes from the ``lake`` resource's settings, given to every callable.
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from medlake.resources import LakeResource

if TYPE_CHECKING:
    from medlake.config import Settings
    from medlake.lineage.graph import LineageGraph

__all__ = ["StandardsState", "build_standard_change_sensor", "standards_state"]


@dataclass(frozen=True)
class StandardsState:
    """What the sensor remembers: the active version and a hash of every standards file."""

    version: str
    files: dict[str, str] = field(default_factory=dict)  # relative path → sha256

    @property
    def digest(self) -> str:
        payload = json.dumps({"version": self.version, "files": self.files}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def standards_state(folder: Path, version: str) -> StandardsState:
    files = {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    } if folder.is_dir() else {}
    return StandardsState(version=version, files=files)


def _cursor(text: str | None) -> StandardsState | None:
    if not text:
        return None
    data = json.loads(text)
    return StandardsState(version=data["version"], files=data["files"])


def build_standard_change_sensor(
    *,
    standards_dir: Callable[["Settings"], Path],
    active_version: Callable[["Settings"], str],
    diff: Callable[["Settings", StandardsState, StandardsState], Any],
    graph: Callable[["Settings", str], "LineageGraph"],
    check_regeneration: Sequence[Sequence[str]] = (),
    name: str = "standard_change_sensor",
    minimum_interval_seconds: int = 60,
    target: AssetSelection | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
) -> SensorDefinition:
    """Each callable gets the ``lake`` resource's settings first: ``standards_dir`` gives the folder to watch,
    ``active_version`` the active release, ``diff(settings, old, new)`` StandardChanges or a StandardDiff,
    ``graph(settings, version)`` the lineage graph built with that version's bindings; ``check_regeneration`` are
    the asset keys that regenerate check files."""

    @sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        target=target or AssetSelection.all(),
        default_status=default_status,
        description="Re-materialize what a changed data standard affects (impact analysis on the lineage graph)",
    )
    def _standard_change(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult | SkipReason:
        settings = lake.settings
        current = standards_state(standards_dir(settings), active_version(settings))
        previous = _cursor(context.cursor)
        cursor = json.dumps(asdict(current), sort_keys=True)
        if previous is None:
            return SensorResult(skip_reason=SkipReason(f"baseline recorded for standards {current.version}"),
                                cursor=cursor)
        if previous.digest == current.digest:
            return SkipReason(f"standards {current.version} unchanged")
        from medlake.lineage.impact import impact

        report = impact(diff(settings, previous, current), graph(settings, current.version))
        keys = report.asset_keys()
        if report.of_kind("check"):
            keys += [list(k) for k in check_regeneration]
        if not keys:
            return SensorResult(skip_reason=SkipReason(f"standards {current.version} changed; nothing affected"),
                                cursor=cursor)
        context.log.info(report.to_text())
        summary = ",".join(f"{k}={v}" for k, v in report.to_dict()["summary"].items())
        request = RunRequest(
            run_key=f"standards-{current.digest[:16]}",
            asset_selection=[AssetKey(k) for k in keys],
            tags={"medlake/standards_version": current.version, "medlake/impact": summary[:200]},
        )
        return SensorResult(run_requests=[request], cursor=cursor)

    return _standard_change
