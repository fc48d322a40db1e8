"""What the services ask of the security module: a table's column classes, the caller's active grants and masking
by grade. Classes and grants are read from their Delta tables at most every few seconds per process (a steward's
change or an approval shows within that time); whether a grant is still valid is decided at each request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from medlake.config import Settings
from medlake.engine.base import Engine
from medlake.errors import ConfigurationError
from medlake.services.tokens import Principal

__all__ = ["MaskResult", "Protection"]

_T = TypeVar("_T")
_CACHE_SECONDS = 5.0


class _Expiring(Generic[_T]):
    """Values computed per key, kept for ``seconds``."""

    def __init__(self, compute: Callable[[Any], _T], seconds: float) -> None:
        self._compute = compute
        self._seconds = seconds
        self._values: dict[Hashable, tuple[float, _T]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> _T:
        now = time.monotonic()
        with self._lock:
            found = self._values.get(key)
        if found is not None and now - found[0] < self._seconds:
            return found[1]
        value = self._compute(key)
        with self._lock:
            self._values[key] = (now, value)
        return value


@dataclass(frozen=True)
class MaskResult:
    frame: Any
    unmasked: tuple[str, ...]
    grants_used: tuple[str, ...]


class Protection:
    """Column classes, grants and masking by grade (``medlake.security``) for the service's responses."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        from medlake.security.classification import ClassificationCatalog
        from medlake.security.grade_masking import default_policy
        from medlake.security.grants import GrantStore

        if not settings.serve.mask_salt:
            raise ConfigurationError("MEDLAKE_MASK_SALT is not set: the service hashes the columns a caller is not "
                                     "cleared for with it (make serve sets a demo value)")
        self.salt = settings.serve.mask_salt
        self.engine = engine
        self.policy = default_policy()
        catalog = ClassificationCatalog(engine, settings)
        store = GrantStore(engine, settings)
        self._classes = _Expiring(catalog.for_table, _CACHE_SECONDS)
        self._grants = _Expiring(lambda user: store.active(user), _CACHE_SECONDS)

    def classes(self, table: str) -> dict[str, Any]:
        return self._classes.get(table)

    def mask(self, frame: Any, table: str, principal: Principal, *, use_grants: bool = True) -> MaskResult:
        """``frame`` (rows of ``table``, e.g. ``dwd.patient``) as ``principal`` may see it."""
        from medlake.security.grade_masking import mask_by_grade

        grants = self._grants.get(principal.name) if use_grants else []
        masked = mask_by_grade(frame, self.classes(table), principal.role, grants, self.salt, engine=self.engine,
                               policy=self.policy, at=datetime.now(UTC))
        return MaskResult(masked.frame, tuple(masked.unmasked), tuple(masked.grants_used))
