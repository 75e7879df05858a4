"""JSON errors for every failure the HTTP layer can meet: never an HTML page, never a 500 for bad input."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from cds_service import metrics
from cds_service.security.forwarding import TokenForwardingRefused

log = logging.getLogger("cds_service.http")

_NAMES = {400: "bad request", 401: "unauthorized", 403: "forbidden", 404: "not found", 405: "method not allowed",
          412: "precondition failed", 413: "request too large", 415: "unsupported media type",
          422: "unprocessable", 500: "internal error"}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    resp = Response(orjson.dumps(body), status=status, mimetype="application/json")
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def error_response(status: int, error: str | None = None, detail: str = "", extra: dict | None = None) -> Response:
    body: dict[str, Any] = {"error": error or _NAMES.get(status, "error"), "detail": detail}
    if extra:
        body.update(extra)
    metrics.HTTP_ERRORS.labels(str(status)).inc()
    return json_response(body, status)


def install(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        detail = {
            413: f"the body exceeds the limit of {app.config.get('MAX_CONTENT_LENGTH')} bytes; the setting "
                 "MMCDS_MAX_BODY_BYTES (MAX_BODY_BYTES) raises it",
            404: "no such endpoint",
            405: "method not allowed on this endpoint",
        }.get(status, exc.description or "")
        return error_response(status, None, detail)

    @app.errorhandler(TokenForwardingRefused)
    def _token_refused(exc: TokenForwardingRefused) -> Response:
        # the host only: the token, the query and the patient stay out of the log
        log.warning("fhir token forwarding refused", extra={"url_host": exc.host, "status": 403})
        return error_response(403, "fhirServer not allowed", str(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error", extra={"error_type": type(exc).__name__})
        return error_response(500, "internal error", "the service failed; the error was logged")
