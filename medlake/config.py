"""Where things live and which engine runs them, read from the environment once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from medlake.errors import ConfigurationError

__all__ = ["ENGINES", "Settings", "settings"]

ENGINES = ("polars", "spark")


@dataclass(frozen=True)
class Settings:
    """Root folder and engine. Every path medlake writes is below ``home``."""

    home: Path
    engine: str = "polars"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigurationError(f"MEDLAKE_ENGINE={self.engine!r}: expected one of {', '.join(ENGINES)}")

    @property
    def lake(self) -> Path:
        return self.home / "lake"

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def truth(self) -> Path:
        return self.home / "truth"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def work(self) -> Path:
        """Scratch space (dbt's external files, Spark's ivy cache, lineage events)."""
        return self.home / "work"

    def table_path(self, layer: str, name: str) -> Path:
        return self.lake / layer / name


def settings() -> Settings:
    """Settings from ``MEDLAKE_HOME`` (default ``./.medlake``) and ``MEDLAKE_ENGINE`` (default ``polars``)."""
    home = Path(os.environ.get("MEDLAKE_HOME") or ".medlake").resolve()
    return Settings(home=home, engine=os.environ.get("MEDLAKE_ENGINE", "polars").strip().lower() or "polars")
