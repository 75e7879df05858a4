"""CORS for browser-based CDS clients (the CDS Hooks sandbox preflights every call).

`CORS_ORIGINS` (default `*`) lists the allowed origins; with a list, the request's Origin is echoed
when allowed (and `Vary: Origin` set). No credentials mode: CDS clients authenticate with the
`Authorization` header, which an explicit `Access-Control-Allow-Headers` entry permits.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request

ALLOW_HEADERS = "Authorization, Content-Type"
ALLOW_METHODS = "GET, POST, OPTIONS"
MAX_AGE_S = "600"


def _allowed_origin(origins: list[str], origin: str | None) -> str | None:
    if "*" in origins:
        return "*"
    if origin and origin in origins:
        return origin
    return None


def install(app: Flask, settings: Any) -> None:
    origins = list(getattr(settings, "cors_origins", None) or ["*"])

    @app.before_request
    def _preflight() -> Response | None:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        resp = Response(status=204)
        allowed = _allowed_origin(origins, request.headers.get("Origin"))
        if allowed:
            resp.headers["Access-Control-Allow-Origin"] = allowed
            resp.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            resp.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
            resp.headers["Access-Control-Max-Age"] = MAX_AGE_S
        return resp

    @app.after_request
    def _allow_origin(resp: Response) -> Response:
        allowed = _allowed_origin(origins, request.environ.get("HTTP_ORIGIN"))
        headers = resp.headers
        if allowed and "Access-Control-Allow-Origin" not in headers:
            headers.add("Access-Control-Allow-Origin", allowed)
            if "Access-Control-Expose-Headers" not in headers:
                headers.add("Access-Control-Expose-Headers", "Content-Type")
        if allowed and allowed != "*":
            resp.vary.add("Origin")
        return resp
