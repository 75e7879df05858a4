"""Public JWKs from private keys, with RFC 7638 thumbprints as `kid`.

`python -m cds_service jwks KEY.pem` writes the key set an EHR test client (or the conformance
harness, `check --jwt-key KEY.pem`) is verified with: put the file, or a URL serving it, in
`TRUSTED_ISSUERS`. The `kid` is the key's RFC 7638 thumbprint — the `kid` the harness puts in its
JWT headers by default — so the two cannot drift. Only public members are written.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

CURVES = {"secp256r1": ("P-256", "ES256"), "secp384r1": ("P-384", "ES384"), "secp521r1": ("P-521", "ES512")}
RSA_ALG = "RS384"  # CDS Hooks 2.0.1 names ES384 and RS384


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64_int(n: int, size: int | None = None) -> str:
    return _b64(n.to_bytes(size or (n.bit_length() + 7) // 8 or 1, "big"))


def required_members(public_key: Any) -> dict[str, str]:
    """The members RFC 7638 hashes (EC: crv, kty, x, y; RSA: e, kty, n)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in CURVES:
            raise ValueError(f"unsupported EC curve {public_key.curve.name}")
        nums = public_key.public_numbers()
        size = (public_key.curve.key_size + 7) // 8
        return {"crv": CURVES[public_key.curve.name][0], "kty": "EC",
                "x": _b64_int(nums.x, size), "y": _b64_int(nums.y, size)}
    if isinstance(public_key, rsa.RSAPublicKey):
        nums = public_key.public_numbers()
        return {"e": _b64_int(nums.e), "kty": "RSA", "n": _b64_int(nums.n)}
    raise ValueError("the key must be an EC (P-256/P-384/P-521) or RSA key")


def jwk_thumbprint(public_key: Any) -> str:
    """RFC 7638: SHA-256 of the required members, lexicographic order, no whitespace."""
    members = required_members(public_key)
    return _b64(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())


def algorithm_for(public_key: Any) -> str:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return CURVES[public_key.curve.name][1]
    return RSA_ALG


def load_key(pem: bytes) -> Any:
    """A private or public PEM key (its public half is what the JWKS carries)."""
    try:
        key: Any = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        key = serialization.load_pem_public_key(pem)
    return key


def public_jwk(key: Any, kid: str | None = None) -> dict[str, str]:
    public = key.public_key() if hasattr(key, "public_key") else key
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < 2048:
        raise ValueError("RSA keys shorter than 2048 bits are refused by the verifier")
    return {**required_members(public), "kid": kid or jwk_thumbprint(public), "use": "sig",
            "alg": algorithm_for(public)}


def jwks_document(pems: list[bytes], kid: str | None = None) -> dict[str, list[dict[str, str]]]:
    keys = [public_jwk(load_key(pem), kid if len(pems) == 1 else None) for pem in pems]
    return {"keys": keys}
