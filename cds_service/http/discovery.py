"""`GET /cds-services`: the discovery document (CDS Hooks 2.0.1); `GET /cds-services/{id}`: 404 JSON
for an unknown service (405 for a known one, which only answers POST)."""

from __future__ import annotations

from flask import Blueprint, Response

from cds_service.hooks.registry import SERVICES, discovery_document
from cds_service.http.errors import error_response, json_response

bp = Blueprint("discovery", __name__)


@bp.get("/cds-services")
def discovery() -> Response:
    return json_response(discovery_document())


@bp.get("/cds-services/<service_id>")
@bp.get("/cds-services/<service_id>/feedback")
def service_get(service_id: str) -> Response:
    if service_id not in SERVICES:
        return error_response(404, "unknown service", f"no CDS service with id '{service_id[:100]}'")
    resp = error_response(405, "method not allowed", "a CDS service answers POST (CDS Hooks 2.0.1)")
    resp.headers["Allow"] = "POST, OPTIONS"
    return resp
