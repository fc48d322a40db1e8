"""What every benchmark measures: wall seconds of a call and the process's peak resident memory."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["peak_rss_mb", "timed"]

T = TypeVar("T")


def timed(call: Callable[[], T]) -> tuple[float, T]:
    """``call()`` and the wall seconds it took (``time.perf_counter``), unrounded."""
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def peak_rss_mb() -> float:
    """The process's peak resident set size so far in MiB (``ru_maxrss``: KiB on Linux, bytes on macOS). It is the
    maximum over the process's life, so a clean figure needs a fresh process (``python -m medlake.bench`` runs each
    benchmark in one)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
