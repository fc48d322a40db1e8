"""Engines run the same operator logic on different compute: ``polars`` (embedded, default) or ``spark``."""

from __future__ import annotations

from collections.abc import Callable

from medlake.engine.base import Engine, WriteResult, merge_predicate
from medlake.errors import ConfigurationError

__all__ = ["Engine", "WriteResult", "get_engine", "merge_predicate"]


def _polars() -> Engine:
    from medlake.engine.polars_engine import PolarsEngine

    return PolarsEngine()


def _spark() -> Engine:
    from medlake.engine.spark_engine import SparkEngine  # imports pyspark lazily, with a clear error

    return SparkEngine()


_ENGINES: dict[str, Callable[[], Engine]] = {"polars": _polars, "spark": _spark}


def get_engine(name: str) -> Engine:
    """The engine named by ``MEDLAKE_ENGINE``: a dict lookup, no branches."""
    try:
        return _ENGINES[name]()
    except KeyError:
        raise ConfigurationError(f"unknown engine {name!r}; expected one of {', '.join(_ENGINES)}") from None
