"""`GET /cds-services`: the discovery document (CDS Hooks 2.0.1)."""

from __future__ import annotations

from flask import Blueprint, Response

from cds_service.hooks.registry import discovery_document
from cds_service.http.errors import json_response

bp = Blueprint("discovery", __name__)


@bp.get("/cds-services")
def discovery() -> Response:
    return json_response(discovery_document())
