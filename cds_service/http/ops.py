"""Operations endpoints: liveness, readiness (knowledge loaded, store reachable), metrics."""

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
    body = {
        "status": "ready" if store_ok else "not ready",
        "knowledgeVersion": runtime.knowledge.version,
        "knowledgeDigest": runtime.knowledge.digest,
        "store": "ok" if store_ok else "unreachable",
    }
    return json_response(body, 200 if store_ok else 503)


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    payload, content_type = metrics.render()
    return Response(payload, mimetype=content_type.split(";")[0], content_type=content_type)
