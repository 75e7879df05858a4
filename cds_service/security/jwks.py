"""JWKS key sources: an issuer's key set from a URL or a local file, cached and refreshed.

We fetch with `requests` ourselves (PyJWT's PyJWKClient uses urllib, is hard to test and has no
file source). A file source lets a deployment pin a published key set with no network; the CDS
Hooks sandbox's set ships as `builtin:cds-hooks-sandbox` (see `keys/README.md`: testing only). Refreshes happen when the set is stale or a
token names an unknown `kid`, at most once per `min_refresh_s` per source, so a flood of tokens
with random kids cannot turn us into a request amplifier against the issuer.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt import PyJWK
from jwt.exceptions import PyJWKError

log = logging.getLogger("mmcds.security.jwks")

MAX_JWKS_BYTES = 256 * 1024
MAX_KEYS = 50

# Asymmetric signature algorithms only: never `none`, never HMAC (a public key used as an HMAC
# secret is the classic key-confusion attack).
EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
RSA_ALGS = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
ASYMMETRIC_ALGS = frozenset(EC_CURVES) | RSA_ALGS


class JwksError(Exception):
    """The key set could not be read; message is safe to log (no token content)."""


def key_matches_alg(key: Any, alg: str) -> bool:
    """Does this public key fit the token's algorithm (curve for EC, RSA for RS/PS)?"""
    if alg in EC_CURVES:
        return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == EC_CURVES[alg]
    if alg in RSA_ALGS:
        return isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048
    return False


class JwkEntry:
    __slots__ = ("kid", "alg", "key")

    def __init__(self, kid: str | None, alg: str | None, key: Any) -> None:
        self.kid, self.alg, self.key = kid, alg, key


def parse_jwks(data: Any) -> list[JwkEntry]:
    """Public signing keys from a JWKS document; private parts, symmetric and unusable keys dropped."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JwksError("not a JWKS document (no 'keys' list)")
    out: list[JwkEntry] = []
    for jwk in data["keys"][:MAX_KEYS]:
        if not isinstance(jwk, dict) or jwk.get("kty") not in ("EC", "RSA"):
            continue
        if jwk.get("use") not in (None, "sig"):
            continue
        ops = jwk.get("key_ops")
        if isinstance(ops, list) and "verify" not in ops:
            continue
        alg = jwk.get("alg") if isinstance(jwk.get("alg"), str) else None
        if alg is not None and alg not in ASYMMETRIC_ALGS:
            continue
        public = {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "oth")}
        try:
            key = PyJWK(public, algorithm=alg).key
        except (PyJWKError, KeyError, ValueError, TypeError):
            continue
        if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
            continue
        kid = jwk.get("kid") if isinstance(jwk.get("kid"), str) else None
        out.append(JwkEntry(kid, alg, key))
    return out


def _is_url(location: str) -> bool:
    return urlparse(location).scheme in ("http", "https")


BUILTIN_DIR = Path(__file__).resolve().parent / "keys"
BUILTIN_PREFIX = "builtin:"


def _file_path(location: str) -> Path:
    """A local JWKS: a path, a `file://` URL, or `builtin:<name>` (a set pinned in the package)."""
    if location.startswith(BUILTIN_PREFIX):
        name = location[len(BUILTIN_PREFIX):]
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise JwksError("bad builtin key set name")
        return BUILTIN_DIR / f"{name}.jwks.json"
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(location)


class JwksSource:
    """One key set (URL or file), thread-safe, with rate-limited refresh."""

    def __init__(
        self,
        location: str,
        *,
        session: requests.Session | None = None,
        timeout_s: float = 5.0,
        min_refresh_s: float = 30.0,
        max_age_s: float = 3600.0,
    ) -> None:
        self.location = location
        self.session = session or requests.Session()
        self.timeout_s = timeout_s
        self.min_refresh_s = min_refresh_s
        self.max_age_s = max_age_s
        self._keys: list[JwkEntry] = []
        self._loaded_at: float | None = None
        self._last_attempt: float | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0  # observability and tests
        self.last_error: str | None = None  # why the last read failed (safe to log: no token content)

    def _read(self) -> Any:
        if _is_url(self.location):
            try:
                with self.session.get(
                    self.location, timeout=self.timeout_s, stream=True, headers={"Accept": "application/json"}
                ) as resp:
                    if resp.status_code != 200:
                        raise JwksError(f"JWKS fetch answered HTTP {resp.status_code}")
                    body = resp.raw.read(MAX_JWKS_BYTES + 1, decode_content=True)
            except requests.RequestException as exc:
                raise JwksError(f"JWKS fetch failed: {type(exc).__name__}") from exc
        else:
            try:
                with open(_file_path(self.location), "rb") as fh:  # JwksError for a bad builtin name
                    body = fh.read(MAX_JWKS_BYTES + 1)
            except OSError as exc:
                raise JwksError(f"JWKS file unreadable: {type(exc).__name__}") from exc
        if len(body) > MAX_JWKS_BYTES:
            raise JwksError("JWKS document too large")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise JwksError("JWKS document is not JSON") from exc

    def _refresh_locked(self, now: float) -> None:
        self._last_attempt = now
        self.fetch_count += 1
        try:
            keys = parse_jwks(self._read())
        except JwksError as exc:
            # Keep serving the keys we had: an issuer's brief outage must not lock every EHR out.
            log.warning("jwks refresh failed", extra={"fields": {"jwks": self.location, "reason": str(exc)}})
            self.last_error = str(exc)
            return
        self._keys = keys
        self._loaded_at = now
        self.last_error = None if keys else "no usable signing key in the key set"

    def usable(self) -> bool:
        """Does this source hold at least one signing key? Reads it when never read or stale
        (rate-limited like every refresh): readiness and start-up ask this."""
        now = time.monotonic()
        with self._lock:
            stale = self._loaded_at is None or now - self._loaded_at >= self.max_age_s
            if stale and self._may_refresh(now):
                self._refresh_locked(now)
            return bool(self._keys)

    def _may_refresh(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self.min_refresh_s

    def candidates(self, kid: str | None, alg: str) -> list[Any]:
        """Keys that may have signed a token with this `kid`/`alg`; refreshes when needed."""
        now = time.monotonic()
        with self._lock:
            stale = self._loaded_at is None or now - self._loaded_at >= self.max_age_s
            if stale and self._may_refresh(now):
                self._refresh_locked(now)
            found = self._match(kid, alg)
            if not found and kid is not None and self._may_refresh(now):
                self._refresh_locked(now)  # key rotation: the issuer published a new kid
                found = self._match(kid, alg)
        return found

    def _match(self, kid: str | None, alg: str) -> list[Any]:
        out = []
        for entry in self._keys:
            if kid is not None and entry.kid != kid:
                continue
            if entry.alg is not None and entry.alg != alg:
                continue
            if key_matches_alg(entry.key, alg):
                out.append(entry.key)
        return out
