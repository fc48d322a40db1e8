"""Access approval: a user asks for a table or service at a grade, for a purpose and a period; a data steward
approves or rejects; an approved grant covers the resource's columns up to its grade until it expires.

Every request and decision is one row appended to ``lake/security/access_grants`` (never updated or deleted); a
grant's state is read from its rows. A grant is active while approved, not expired and not revoked.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from medlake.security.errors import GrantError

if TYPE_CHECKING:
    from medlake.config import Settings
    from medlake.engine.base import Engine

__all__ = ["GRANTS_TABLE", "Grant", "GrantStatus", "GrantStore"]

GRANTS_TABLE = ("security", "access_grants")
GrantStatus = Literal["requested", "approved", "rejected", "revoked"]
_EVENT = {"approve": "approved", "reject": "rejected", "revoke": "revoked"}


def _utc(moment: datetime) -> datetime:
    """An aware UTC datetime (a naive one is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Grant:
    grant_id: str
    user: str
    resource: str  # a table (``dwd.patient``) or a configured service name
    grade: int  # columns up to this grade are unmasked for ``user`` on ``resource``
    purpose: str
    valid_from: datetime
    valid_until: datetime
    status: GrantStatus = "requested"
    requested_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None

    def is_active(self, at: datetime | None = None) -> bool:
        """Approved and ``at`` (default now) inside [valid_from, valid_until)."""
        moment = _utc(at or datetime.now(UTC))
        return self.status == "approved" and self.valid_from <= moment < self.valid_until

    def covers(self, resource: str, grade: int, at: datetime | None = None) -> bool:
        return self.resource == resource and grade <= self.grade and self.is_active(at)

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


_SCHEMA = pa.schema([
    ("grant_id", pa.string()), ("event", pa.string()), ("user", pa.string()), ("resource", pa.string()),
    ("grade", pa.int64()), ("purpose", pa.string()), ("valid_from", pa.timestamp("us", tz="UTC")),
    ("valid_until", pa.timestamp("us", tz="UTC")), ("actor", pa.string()), ("reason", pa.string()),
    ("at", pa.timestamp("us", tz="UTC")),
])


class GrantStore:
    """Requests and decisions in ``lake/security/access_grants``."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.location = str(settings.table_path(*GRANTS_TABLE))

    def _append(self, row: Mapping[str, Any]) -> None:
        table = pa.Table.from_pylist([{k: row.get(k) for k in _SCHEMA.names}], schema=_SCHEMA)
        self.engine.append(self.engine.from_arrow(table), self.location,
                           metadata={"writer": "medlake.security.grants", "event": str(row["event"]),
                                     "grant_id": str(row["grant_id"])})

    def events(self) -> list[dict[str, Any]]:
        """Every recorded request and decision, oldest first."""
        if not self.engine.exists(self.location):
            return []
        return sorted(self.engine.to_arrow(self.engine.read(self.location)).to_pylist(), key=lambda r: r["at"])

    def request(self, user: str, resource: str, grade: int, purpose: str, until: datetime,
                *, valid_from: datetime | None = None) -> str:
        """Record a request; returns the new grant id."""
        now = datetime.now(UTC)
        start = _utc(valid_from) if valid_from else now
        end = _utc(until)
        for name, value in (("user", user), ("resource", resource), ("purpose", purpose)):
            if not value or not value.strip():
                raise GrantError(f"access request: {name} is empty")
        if not isinstance(grade, int) or not 1 <= grade <= 5:
            raise GrantError(f"access request: grade {grade!r}: expected 1 … 5")
        if end <= start:
            raise GrantError(f"access request: until {end.isoformat()} is not after {start.isoformat()}")
        grant_id = uuid.uuid4().hex
        self._append({"grant_id": grant_id, "event": "requested", "user": user.strip(), "resource": resource.strip(),
                      "grade": grade, "purpose": purpose.strip(), "valid_from": start, "valid_until": end,
                      "actor": user.strip(), "at": now})
        return grant_id

    def _decide(self, grant_id: str, decision: str, steward: str, reason: str | None) -> Grant:
        grant = self.get(grant_id)
        if not steward or not steward.strip():
            raise GrantError(f"grant {grant_id}: the {decision} needs the steward's name")
        if decision == "revoke":
            if grant.status != "approved":
                raise GrantError(f"grant {grant_id} is {grant.status}; only an approved grant can be revoked")
        elif grant.status != "requested":
            raise GrantError(f"grant {grant_id} was already {grant.status} by {grant.decided_by}")
        if decision != "approve" and not (reason and reason.strip()):
            raise GrantError(f"grant {grant_id}: a {decision} needs a reason")
        if decision == "approve" and steward.strip() == grant.user:
            raise GrantError(f"grant {grant_id}: {steward} cannot approve their own request")
        now = datetime.now(UTC)
        self._append({"grant_id": grant_id, "event": _EVENT[decision], "user": grant.user, "resource": grant.resource,
                      "grade": grant.grade, "purpose": grant.purpose, "valid_from": grant.valid_from,
                      "valid_until": grant.valid_until, "actor": steward.strip(), "reason": reason, "at": now})
        return replace(grant, status=_EVENT[decision], decided_by=steward.strip(), decided_at=now,  # type: ignore[arg-type]
                       reason=reason)

    def approve(self, grant_id: str, steward: str) -> Grant:
        return self._decide(grant_id, "approve", steward, None)

    def reject(self, grant_id: str, steward: str, reason: str) -> Grant:
        return self._decide(grant_id, "reject", steward, reason)

    def revoke(self, grant_id: str, steward: str, reason: str) -> Grant:
        """End an approved grant before it expires."""
        return self._decide(grant_id, "revoke", steward, reason)

    def grants(self) -> list[Grant]:
        """Every grant in its current state, newest request first."""
        found: dict[str, Grant] = {}
        for row in self.events():
            if row["event"] == "requested":
                found[row["grant_id"]] = Grant(
                    grant_id=row["grant_id"], user=row["user"], resource=row["resource"], grade=int(row["grade"]),
                    purpose=row["purpose"], valid_from=row["valid_from"], valid_until=row["valid_until"],
                    requested_at=row["at"],
                )
            elif row["grant_id"] in found:
                found[row["grant_id"]] = replace(found[row["grant_id"]], status=row["event"], decided_by=row["actor"],
                                                 decided_at=row["at"], reason=row["reason"])
        return sorted(found.values(), key=lambda g: g.requested_at or g.valid_from, reverse=True)

    def get(self, grant_id: str) -> Grant:
        for grant in self.grants():
            if grant.grant_id == grant_id:
                return grant
        raise GrantError(f"no access grant {grant_id!r}")

    def active(self, user: str, resource: str | None = None, at: datetime | None = None) -> list[Grant]:
        """``user``'s approved, unexpired grants (on ``resource`` when given) at ``at`` (default now)."""
        return [g for g in self.grants() if g.user == user and (resource is None or g.resource == resource)
                and g.is_active(at)]
