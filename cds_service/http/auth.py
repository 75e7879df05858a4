"""Bearer-JWT check in front of the service and feedback endpoints (AUTH_MODE=jwt).

Discovery (`GET /cds-services`) and CORS preflights stay open, as CDS Hooks expects. A refused
token gets a bare 401 — the reason goes to the log only, so a prober learns nothing. When the
replay store cannot be reached the check fails closed with 503 (retry later), not 401.

Audience: with `PUBLIC_BASE_URL` set, only `PUBLIC_BASE_URL + path` (and `AUD_ALIASES`) are
accepted. The URL derived from the request (Host header) is used only when no public base URL is
configured: a Host header is client-controlled, so trusting it in production would let a token
minted for another service be replayed here.

Every request also gets the scope of FHIR servers its `fhirAuthorization` token may be sent to
(security/forwarding.py): the verified issuer's allow-list under JWT, loopback and the allow-list
in development, nothing for an unauthenticated call under JWT.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import orjson
from flask import Flask, Response, request

from cds_service.security.forwarding import scope_for, set_scope
from cds_service.security.jwt_auth import AuthError, JwtVerifier

log = logging.getLogger("cds_service.auth")

PROTECTED = re.compile(r"^/cds-services/[^/]+(/feedback)?/?$")
_UNAUTHORIZED = orjson.dumps({"error": "unauthorized", "detail": "invalid or missing bearer token"})
_UNAVAILABLE = orjson.dumps({"error": "unavailable", "detail": "authentication is temporarily unavailable"})


def audiences(settings: Any, path: str, request_base_url: str) -> list[str]:
    """The `aud` values this endpoint answers to."""
    base = getattr(settings, "public_base_url", None)
    out = [base.rstrip("/") + path] if base else [request_base_url]
    out.extend(getattr(settings, "aud_aliases", None) or [])
    return out


def unauthorized() -> Response:
    return Response(
        _UNAUTHORIZED, status=401, mimetype="application/json", headers={"WWW-Authenticate": 'Bearer realm="cds-services"'}
    )


def install(app: Flask, runtime_getter: Callable[[], Any]) -> None:
    """Register the check; the verifier is built once per runtime (it caches key sets)."""
    state: dict[str, Any] = {}
    runtime = runtime_getter()
    if runtime is not None and getattr(runtime.settings, "auth_mode", "none") == "none":
        log.warning("AUTH_MODE=none: CDS client JWTs are not verified (development and tests only)",
                    extra={"auth_mode": "none"})

    def verifier(rt: Any) -> JwtVerifier:
        if hasattr(rt, "verifier"):  # the app's Runtime keeps one (readiness reads its key sets)
            return rt.verifier()
        v = state.get("verifier")
        if v is None or state.get("runtime") is not rt:
            v = JwtVerifier(rt.settings, rt.store)
            state["verifier"], state["runtime"] = v, rt
        return v

    @app.teardown_request
    def _drop_scope(_exc: BaseException | None) -> None:
        set_scope(None)

    @app.before_request
    def _check_bearer() -> Response | None:
        rt = runtime_getter()
        set_scope(scope_for(rt.settings, None))
        if request.method != "POST" or not PROTECTED.match(request.path):
            return None
        if getattr(rt.settings, "auth_mode", "none") != "jwt":
            return None
        try:
            claims = verifier(rt).verify(
                request.headers.get("Authorization"), audiences(rt.settings, request.path, request.base_url)
            )
        except AuthError as exc:
            log.warning("token refused", extra={"reason": str(exc), "issuer": exc.issuer, "path": request.path,
                                                "status": 401})
            return unauthorized()
        except Exception as exc:  # the replay store is down: fail closed, say "try later", no internals
            log.error("token check failed", extra={"error_type": type(exc).__name__, "path": request.path,
                                                   "status": 503})
            return Response(_UNAVAILABLE, status=503, mimetype="application/json", headers={"Retry-After": "5"})
        request.environ["mmcds.jwt_claims"] = claims
        set_scope(scope_for(rt.settings, claims.get("iss")))
        return None
