"""Verify CDS client JWTs per CDS Hooks 2.0.1 "Trusting CDS Clients".

Accepted algorithms: the two the spec requires (ES384, RS384) plus the other asymmetric JOSE
algorithms some EHRs use (ES256, ES512, RS256, RS512, PS256, PS384, PS512); configurable with
`JWT_ALGORITHMS`. Never `none`, never HMAC: an HS256 token is refused before any key is looked at.

Keys: `TRUSTED_ISSUERS` maps each `iss` to its JWKS (https URL, file path or `file://` URL). A
`jku` header is only followed when it is on `JKU_ALLOWLIST` *and* bound to the token's (trusted)
issuer: an allow-list entry is either `"<issuer> <jku-url>"` (explicit binding) or a bare URL,
bound to trusted issuers with the same origin (scheme, host, port). A `jku` that is not allowed
is ignored — never fetched — and the issuer's pinned keys decide; so the CDS Hooks sandbox
(which always sends a `jku`) works against a pinned offline copy of its key set, and a token
pointing at an attacker's key set fails for want of a trusted key.

Audience: `aud` (string or list) must contain one of the audiences the caller passes (the
endpoint URL and configured aliases); trailing slashes are ignored. Time: `exp` and `iat`
required, `nbf` honoured, all with `JWT_LEEWAY_S`; `iat` in the future beyond the leeway is
refused. `jti` required and claimed once in the store (replays refused across workers/replicas).
`tenant` must be on `TENANT_ALLOWLIST` when that list is set.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlparse

import jwt
import requests
from jwt.exceptions import PyJWTError

from cds_service.security.jwks import ASYMMETRIC_ALGS, JwksSource

DEFAULT_ALGORITHMS = ("ES384", "RS384", "ES256", "ES512", "RS256", "RS512", "PS256", "PS384", "PS512")
MAX_TOKEN_CHARS = 16 * 1024


class AuthError(Exception):
    """Token refused. The message says why, for logs only: clients get a bare 401.

    `issuer` is set once the token's `iss` is known to be a trusted issuer (so logs can say which
    EHR is failing without echoing attacker-chosen strings).
    """

    def __init__(self, message: str, issuer: str | None = None) -> None:
        super().__init__(message)
        self.issuer = issuer


class _JtiStore(Protocol):
    def claim_jti(self, issuer: str, jti: str, expires_at: datetime) -> bool: ...


def _origin(url: str) -> tuple[str, str, int | None]:
    p = urlparse(url)
    port = p.port or {"https": 443, "http": 80}.get(p.scheme)
    return (p.scheme.lower(), (p.hostname or "").lower(), port)


def _norm_aud(value: str) -> str:
    return value.strip().rstrip("/")


def bearer_token(authorization_header: str | None) -> str:
    """The token from `Authorization: Bearer <token>`; AuthError when absent or malformed."""
    if not authorization_header:
        raise AuthError("no Authorization header")
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("Authorization is not a Bearer token")
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthError("token too long")
    return token


class JwtVerifier:
    """Thread-safe; build once per process (it caches key sets)."""

    def __init__(
        self,
        settings: Any,
        store: _JtiStore,
        *,
        session: requests.Session | None = None,
        min_refresh_s: float = 30.0,
        max_age_s: float = 3600.0,
        fetch_timeout_s: float = 5.0,
    ) -> None:
        self.store = store
        self.leeway = int(getattr(settings, "jwt_leeway_s", 30))
        allowed = getattr(settings, "jwt_algorithms", None) or DEFAULT_ALGORITHMS
        self.algorithms = frozenset(a for a in allowed if a in ASYMMETRIC_ALGS)
        self.tenants = frozenset(getattr(settings, "tenant_allowlist", None) or ())
        self._session = session or requests.Session()
        self._source_kwargs = {
            "session": self._session,
            "timeout_s": fetch_timeout_s,
            "min_refresh_s": min_refresh_s,
            "max_age_s": max_age_s,
        }
        self.issuer_sources: dict[str, JwksSource | None] = {
            iss: (JwksSource(loc, **self._source_kwargs) if loc else None)
            for iss, loc in (getattr(settings, "trusted_issuers", None) or {}).items()
        }
        self._jku_bound: dict[str, set[str]] = {}  # jku url -> issuers it may serve
        self._jku_origin: list[str] = []  # bare allow-list urls, bound by origin
        for entry in getattr(settings, "jku_allowlist", None) or ():
            parts = entry.split()
            if len(parts) == 2:
                self._jku_bound.setdefault(parts[1], set()).add(parts[0])
            elif len(parts) == 1:
                self._jku_origin.append(parts[0])
        self._jku_sources: dict[str, JwksSource] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ keys
    def jku_allowed(self, iss: str, jku: str) -> bool:
        """Is this `jku` allow-listed for this issuer (see module docstring)?"""
        if iss not in self.issuer_sources or urlparse(jku).scheme not in ("https", "http"):
            return False
        if iss in self._jku_bound.get(jku, ()):
            return True
        return jku in self._jku_origin and _origin(jku) == _origin(iss)

    def _jku_source(self, jku: str) -> JwksSource:
        with self._lock:
            src = self._jku_sources.get(jku)
            if src is None:  # bounded: only allow-listed URLs reach here
                src = self._jku_sources[jku] = JwksSource(jku, **self._source_kwargs)
            return src

    def _keys(self, iss: str, header: dict) -> list[Any]:
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        alg = header["alg"]
        sources: list[JwksSource] = []
        jku = header.get("jku")
        if isinstance(jku, str) and self.jku_allowed(iss, jku):
            sources.append(self._jku_source(jku))
        pinned = self.issuer_sources.get(iss)
        if pinned is not None:
            sources.append(pinned)
        keys: list[Any] = []
        for src in sources:
            keys.extend(src.candidates(kid, alg))
        return keys

    # ------------------------------------------------------------------ verify
    def verify(self, authorization_header: str | None, audiences: list[str]) -> dict:
        """Claims of a valid token; AuthError otherwise. Consumes the token's `jti`."""
        token = bearer_token(authorization_header)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except PyJWTError as exc:
            raise AuthError(f"malformed token: {type(exc).__name__}") from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise AuthError(f"algorithm not accepted: {str(alg)[:20]}")
        iss = unverified.get("iss")
        if not isinstance(iss, str) or iss not in self.issuer_sources:
            raise AuthError("issuer not trusted")
        try:
            return self._verify_trusted(token, header, alg, iss, audiences)
        except AuthError as exc:
            exc.issuer = iss
            raise

    def _verify_trusted(self, token: str, header: dict, alg: str, iss: str, audiences: list[str]) -> dict:
        keys = self._keys(iss, header)
        if not keys:
            raise AuthError("no trusted key for this kid/alg")
        claims: dict | None = None
        last: Exception | None = None
        for key in keys:
            try:
                claims = jwt.decode(
                    token,
                    key=key,
                    algorithms=[alg],
                    issuer=iss,
                    leeway=self.leeway,
                    options={
                        "verify_aud": False,  # checked below, tolerant of trailing slashes
                        "require": ["iss", "aud", "exp", "iat", "jti"],
                    },
                )
                break
            except jwt.InvalidSignatureError as exc:
                last = exc
                continue
            except PyJWTError as exc:
                raise AuthError(f"token refused: {type(exc).__name__}: {exc}") from exc
        if claims is None:
            raise AuthError(f"signature invalid: {type(last).__name__ if last else 'no key'}")
        self._check_claims(claims, audiences)
        exp = datetime.fromtimestamp(int(claims["exp"]) + self.leeway, tz=UTC)
        if not self.store.claim_jti(iss, claims["jti"], exp):
            raise AuthError("jti replayed")
        return claims

    def _check_claims(self, claims: dict, audiences: list[str]) -> None:
        now = datetime.now(tz=UTC).timestamp()
        iat = claims.get("iat")
        if not isinstance(iat, (int, float)) or iat > now + self.leeway:
            raise AuthError("iat in the future")
        aud = claims.get("aud")
        token_auds = [aud] if isinstance(aud, str) else [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []
        wanted = {_norm_aud(a) for a in audiences if a}
        if not wanted or not any(_norm_aud(a) in wanted for a in token_auds):
            raise AuthError("audience mismatch")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti.strip() or len(jti) > 255:
            raise AuthError("jti missing or invalid")
        if self.tenants and claims.get("tenant") not in self.tenants:
            raise AuthError("tenant not allowed")
