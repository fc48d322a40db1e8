"""Bearer tokens: HS256 JWTs from the built-in issuer (``POST /token``), and RS256 JWTs of an identity provider
verified against its JWKS (``MEDLAKE_JWKS_URL``)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from medlake.config import Settings
from medlake.services.problems import ServiceError
from medlake.services.users import ROLES, User

__all__ = ["BUILTIN_ISSUER", "Principal", "TokenAuthority"]

BUILTIN_ISSUER = "medlake"
_LEEWAY_SECONDS = 10


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject and the role it acts in."""

    name: str
    role: str
    issuer: str


def _unauthorized(detail: str) -> ServiceError:
    return ServiceError(401, "Not authenticated", detail, headers={"WWW-Authenticate": "Bearer"})


def _secret_file(settings: Settings) -> Path:
    return settings.home / "services" / "token_secret"


def _builtin_key(settings: Settings) -> str:
    """``MEDLAKE_TOKEN_SECRET``, else a random key created once (mode 0600) under ``$MEDLAKE_HOME/services``."""
    if settings.serve.token_secret:
        return settings.serve.token_secret
    path = _secret_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            return path.read_text(encoding="ascii").strip()
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()


class TokenAuthority:
    """Issues built-in tokens and verifies any bearer token to a :class:`Principal`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings.serve
        self._key = _builtin_key(settings)
        self._jwks = jwt.PyJWKClient(self.settings.jwks_url, cache_keys=True) if self.settings.jwks_url else None

    def issue(self, user: User) -> tuple[str, int]:
        """A signed token for ``user`` and its lifetime in seconds."""
        now = datetime.now(UTC)
        lifetime = timedelta(minutes=self.settings.token_minutes)
        claims = {"sub": user.name, "role": user.role, "iss": BUILTIN_ISSUER, "aud": self.settings.jwt_audience,
                  "iat": now, "nbf": now, "exp": now + lifetime, "jti": secrets.token_hex(8)}
        return jwt.encode(claims, self._key, algorithm="HS256"), int(lifetime.total_seconds())

    def verify(self, token: str) -> Principal:
        """The caller of a valid token; 401 for a missing, malformed, expired or untrusted one."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") == "HS256":
                claims = self._decode(token, self._key, "HS256", BUILTIN_ISSUER)
                return Principal(str(claims["sub"]), self._role(claims.get("role")), BUILTIN_ISSUER)
            if header.get("alg") == "RS256" and self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                claims = self._decode(token, key, "RS256", self.settings.jwt_issuer or None)
                return Principal(str(claims["sub"]), self._role(claims.get(self.settings.jwt_role_claim)),
                                 str(claims.get("iss", "")))
        except jwt.PyJWKClientError as exc:
            raise _unauthorized(f"token signing key not found in the configured JWKS: {exc}") from None
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"invalid token: {exc}") from None
        raise _unauthorized(f"token algorithm {header.get('alg')!r} is not accepted")

    def _decode(self, token: str, key: Any, algorithm: str, issuer: str | None) -> dict[str, Any]:
        required = ["exp", "sub", "aud"] + (["iss"] if issuer else [])
        return jwt.decode(token, key, algorithms=[algorithm], audience=self.settings.jwt_audience, issuer=issuer,
                          leeway=_LEEWAY_SECONDS, options={"require": required})

    @staticmethod
    def _role(claim: Any) -> str:
        """The first medlake role named by the claim (a string or a list of strings)."""
        candidates = [claim] if isinstance(claim, str) else list(claim) if isinstance(claim, list) else []
        for candidate in candidates:
            if candidate in ROLES:
                return str(candidate)
        raise _unauthorized(f"token carries no medlake role (one of {', '.join(ROLES)})")
