"""Test keys, JWKS documents, CDS-client tokens and a loopback JWKS server.

Keys are made with `cryptography` at test time (nothing secret is committed). Tokens mimic what
real clients send (clients.md): the sandbox's ES384 with `kid` + `jku`, `exp = iat + 300`, a
`jti`; Epic's RS384 with `nbf` and `sub`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


class TestKey:
    """A private key with its kid and JOSE algorithm."""

    __test__ = False

    def __init__(self, kind: str, kid: str, alg: str | None = None) -> None:
        self.kid = kid
        if kind == "ec384":
            self.private = ec.generate_private_key(ec.SECP384R1())
            self.alg = alg or "ES384"
        elif kind == "ec256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.alg = alg or "ES256"
        elif kind == "rsa":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = alg or "RS384"
        else:
            raise ValueError(kind)
        self.public = self.private.public_key()

    def jwk(self, **extra: Any) -> dict[str, Any]:
        """The public JWK (what an issuer publishes)."""
        algo = ECAlgorithm if isinstance(self.public, ec.EllipticCurvePublicKey) else RSAAlgorithm
        out = json.loads(algo.to_jwk(self.public))
        out.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        out.update(extra)
        return out

    def public_pem(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def jwks(*keys: TestKey) -> dict[str, Any]:
    return {"keys": [k.jwk() for k in keys]}


def claims(iss: str, aud: str | list[str], *, lifetime: int = 300, now: float | None = None, **extra: Any) -> dict:
    """Sandbox-shaped claims: iss, aud, exp = iat + 300, iat, jti (extra overrides/adds)."""
    t = int(time.time() if now is None else now)
    out: dict[str, Any] = {"iss": iss, "aud": aud, "iat": t, "exp": t + lifetime, "jti": str(uuid.uuid4())}
    out.update(extra)
    return {k: v for k, v in out.items() if v is not None}


def sign(key: TestKey, payload: dict, *, alg: str | None = None, kid: str | None = "default",
         headers: dict | None = None) -> str:
    """A signed JWT; `kid=None` omits the kid header."""
    hdr: dict[str, Any] = {"typ": "JWT"}
    if kid == "default":
        hdr["kid"] = key.kid
    elif kid is not None:
        hdr["kid"] = kid
    hdr.update(headers or {})
    return jwt.encode(payload, key.private, algorithm=alg or key.alg, headers=hdr)


def bearer(token: str) -> str:
    return f"Bearer {token}"


class JwksServer:
    """Serves JWKS documents on 127.0.0.1 at any path; counts requests per path; swappable."""

    def __init__(self, documents: dict[str, Any] | None = None) -> None:
        self.documents: dict[str, Any] = dict(documents or {})
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                with outer._lock:
                    outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                    doc = outer.documents.get(self.path)
                body = json.dumps(doc).encode() if doc is not None else b'{"error":"not found"}'
                self.send_response(200 if doc is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return self.base_url + path

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
