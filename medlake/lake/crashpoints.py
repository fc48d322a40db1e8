"""Named points in the write paths where a crash-consistency test has the process killed.

``crash_point("ods.append.before_commit")`` does nothing unless ``MEDLAKE_CRASH_POINT`` (read by
``medlake.config.armed_crash_point``) names that point; then the process kills itself with SIGKILL, as a power cut
or an OOM kill would, leaving no chance to clean up. The tests in ``tests/lake/test_faults.py`` arm each point in turn,
check that every Delta table still opens at a committed version, rerun the load and compare it with an
uninterrupted one.
"""

from __future__ import annotations

import os
import signal

from medlake.config import armed_crash_point
from medlake.errors import ConfigurationError

__all__ = ["CRASH_POINTS", "crash_point"]

CRASH_POINTS: tuple[str, ...] = (
    # ODS landing of one source table (medlake.lake.ods): data append, quarantine MERGE, load-log MERGE
    "ods.append.before_commit",
    "ods.append.after_commit",
    "ods.quarantine.before_commit",
    "ods.quarantine.after_commit",
    "ods.load_log.before_commit",
    "ods.load_log.after_commit",
    # DWD typing and MERGE (medlake.lake.dwd)
    "dwd.quarantine.before_commit",
    "dwd.quarantine.after_commit",
    "dwd.merge.before_commit",
    "dwd.merge.after_commit",
    # EMPI state (medlake.empi.index): golden records, audit, review, then the index itself
    "empi.golden.after_append",
    "empi.golden.after_merge",
    "empi.audit.after_append",
    "empi.review.after_append",
    "empi.index.after_append",
    "empi.index.after_merge",
    # dbt-duckdb landing a subject theme as Delta (medlake.dbt.duckdb_delta)
    "dbt.land.after_commit",
    # YAML workflows (medlake.workflows.run): operator quarantine, target write
    "workflow.quarantine.after_commit",
    "workflow.target.before_commit",
    "workflow.target.after_commit",
)


def crash_point(name: str) -> None:
    """Kill this process (SIGKILL) if ``name`` is the armed crash point; otherwise nothing."""
    if name not in CRASH_POINTS:
        raise ConfigurationError(f"crash point {name!r} is not registered in medlake.lake.crashpoints")
    if armed_crash_point() == name:
        os.kill(os.getpid(), signal.SIGKILL)
