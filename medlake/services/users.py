"""The built-in user store: names, roles and argon2 password hashes in a SQLite file under ``$MEDLAKE_HOME``."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from medlake.config import Settings
from medlake.errors import ConfigurationError
from medlake.security.grade_masking import ROLES  # the roles the masking policy grades

__all__ = ["ROLES", "User", "UserStore", "users_path"]

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")
_MIN_PASSWORD = 8
_HASHER = PasswordHasher()


@dataclass(frozen=True)
class User:
    name: str
    role: str


def users_path(settings: Settings) -> Path:
    return settings.home / "services" / "users.sqlite"


class UserStore:
    """Users of the built-in token issuer. One row per user; the password is kept only as an argon2id hash."""

    def __init__(self, settings: Settings) -> None:
        self.path = users_path(settings)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        connection.execute("CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, role TEXT NOT NULL, "
                           "password_hash TEXT NOT NULL, created_at TEXT NOT NULL)")
        return connection

    def add(self, name: str, role: str, password: str) -> User:
        """Add ``name`` with ``role`` (or replace its role and password)."""
        if not name or len(name) > 64 or not set(name) <= _NAME_CHARS:
            raise ConfigurationError(f"user name {name!r}: 1-64 characters of letters, digits and . _ - @")
        if role not in ROLES:
            raise ConfigurationError(f"role {role!r}: expected one of {', '.join(ROLES)}")
        if len(password) < _MIN_PASSWORD:
            raise ConfigurationError(f"password of {name}: at least {_MIN_PASSWORD} characters")
        with closing(self._connect()) as db, db:
            db.execute("INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?)",
                       (name, role, _HASHER.hash(password), datetime.now(UTC).isoformat()))
        return User(name, role)

    def remove(self, name: str) -> bool:
        with closing(self._connect()) as db, db:
            return db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def list(self) -> list[User]:
        with closing(self._connect()) as db:
            return [User(n, r) for n, r in db.execute("SELECT name, role FROM users ORDER BY name")]

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs; None otherwise (unknown name or wrong password alike)."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT role, password_hash FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            _HASHER.hash(password)  # the same work for an unknown name: no timing hint of which names exist
            return None
        try:
            _HASHER.verify(row[1], password)
        except (VerificationError, InvalidHashError):
            return None
        return User(name, row[0])
