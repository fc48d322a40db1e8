"""Which role may call which service: a casbin model and a role → service policy file, checked by casbin's
synchronized enforcer (the plain one is not safe under concurrent requests)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import casbin

from medlake.config import Settings
from medlake.errors import ConfigurationError
from medlake.services.users import ROLES

__all__ = ["ACTION", "AccessPolicy", "configured_service_resource"]

ACTION = "read"
_HERE = Path(__file__).parent


def configured_service_resource(name: str) -> str:
    return f"service/{name}"


class AccessPolicy:
    """Role → service rules from ``MEDLAKE_SERVE_POLICY`` (default: the packaged ``policy.csv``), plus the roles a
    configured service allows (added in memory when the service is registered)."""

    def __init__(self, settings: Settings) -> None:
        path = Path(settings.serve.policy_file) if settings.serve.policy_file else _HERE / "policy.csv"
        if not path.is_file():
            raise ConfigurationError(f"MEDLAKE_SERVE_POLICY={path}: no such policy file")
        self.path = path
        self._enforcer = casbin.SyncedEnforcer(str(_HERE / "policy_model.conf"), str(path))
        unknown = sorted({rule[0] for rule in self._enforcer.get_policy()} - set(ROLES))
        if unknown:
            raise ConfigurationError(f"{path}: unknown role(s) {', '.join(unknown)}; expected {', '.join(ROLES)}")

    def allow(self, roles: Iterable[str], resource: str) -> None:
        for role in roles:
            self._enforcer.add_policy(role, resource, ACTION)

    def permits(self, role: str, resource: str) -> bool:
        return bool(self._enforcer.enforce(role, resource, ACTION))
