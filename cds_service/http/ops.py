"""Operations endpoints: liveness, readiness (knowledge loaded, store reachable, and under JWT at
least one trusted issuer whose key set can be read), metrics."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from cds_service import metrics
from cds_service.http.errors import json_response

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    runtime = current_app.extensions["mmcds"]
    store_ok = runtime.store.ping() if runtime.store is not None else False
    issuers = runtime.issuer_status() if hasattr(runtime, "issuer_status") else {}
    auth_ok = runtime.settings.auth_mode != "jwt" or any(v == "ok" for v in issuers.values())
    ready = store_ok and auth_ok
    body: dict[str, object] = {
        "status": "ready" if ready else "not ready",
        "knowledgeVersion": runtime.knowledge.version,
        "knowledgeDigest": runtime.knowledge.digest,
        "store": "ok" if store_ok else "unreachable",
        "auth": runtime.settings.auth_mode if auth_ok else "no usable trusted issuer",
    }
    if issuers:
        body["issuers"] = issuers
    return json_response(body, 200 if ready else 503)


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    payload, content_type = metrics.render()
    return Response(payload, mimetype=content_type.split(";")[0], content_type=content_type)
