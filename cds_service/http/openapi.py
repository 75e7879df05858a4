"""`GET /openapi.json`: an OpenAPI 3.1 description of the HTTP API, built once per app.

Hand-written rather than generated: the API is small and fixed by CONTRACT.md, and the request /
response bodies are already specified as JSON Schemas (`cds_service/hooks/schemas/`). Those are
embedded into `components.schemas` — each file's `$defs` hoisted into components of their own and
every `$ref` rewritten to point there — so the document stands alone (no `$id` resolution needed
by a client generator or by schemathesis). Pages added by other blueprints (sandbox, SMART app)
are listed from the app's URL map, so the document cannot drift from what is actually served.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any

from flask import Blueprint, Flask, Response, current_app

from cds_service.hooks import schemas as hook_schemas
from cds_service.hooks.registry import SERVICES
from cds_service.http.errors import json_response

bp = Blueprint("openapi", __name__)

# schema file stem → component name
COMPONENT_NAMES = {
    "request": "CdsRequest",
    "response": "CdsResponse",
    "service-response": "CdsServiceResponse",
    "discovery": "CdsDiscovery",
    "feedback": "CdsFeedbackItem",
    "context-patient-view": "ContextPatientView",
    "context-order-select": "ContextOrderSelect",
    "context-order-sign": "ContextOrderSign",
}
_REF = re.compile(r"^(?P<file>[A-Za-z0-9._-]+\.schema\.json)?(?:#(?P<pointer>.*))?$")
_HANDLED = {"discovery", "hooks", "feedback", "ops", "openapi", "static"}  # blueprints described by hand


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _component_for(stem: str) -> str:
    return COMPONENT_NAMES.get(stem) or "".join(p.capitalize() for p in re.split(r"[^A-Za-z0-9]+", stem))


def _rewrite(node: Any, stem: str) -> Any:
    """Copy a schema, pointing `$ref`s at components instead of files and `$defs`."""
    if isinstance(node, list):
        return [_rewrite(n, stem) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$schema", "$id", "$defs"):
            continue
        if key == "$ref" and isinstance(value, str):
            m = _REF.match(value)
            if m is None:
                raise ValueError(f"unsupported $ref {value!r} in {stem}.schema.json")
            target = m.group("file").removesuffix(".schema.json") if m.group("file") else stem
            pointer = m.group("pointer") or ""
            if pointer.startswith("/$defs/"):
                out[key] = f"#/components/schemas/{_component_for(target)}_{pointer.split('/')[2]}"
            elif pointer in ("", "/"):
                out[key] = f"#/components/schemas/{_component_for(target)}"
            else:
                raise ValueError(f"unsupported $ref {value!r} in {stem}.schema.json")
            continue
        out[key] = _rewrite(value, stem)
    return out


@functools.cache
def embedded_schemas() -> dict[str, Any]:
    """Every hook JSON Schema as OpenAPI components (read once per process)."""
    components: dict[str, Any] = {}
    for path in sorted(hook_schemas.SCHEMA_DIR.glob("*.schema.json")):
        stem = path.name.removesuffix(".schema.json")
        schema = json.loads(path.read_text(encoding="utf-8"))
        name = _component_for(stem)
        components[name] = _rewrite(schema, stem)
        for def_name, sub in (schema.get("$defs") or {}).items():
            components[f"{name}_{def_name}"] = _rewrite(sub, stem)
    return components


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "CONTRACT error body; 412 answers also carry a FHIR OperationOutcome.",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "string"},
        "operationOutcome": {"type": "object", "required": ["resourceType"],
                             "properties": {"resourceType": {"const": "OperationOutcome"}}},
    },
}

_ERROR_TEXT = {
    400: "Malformed JSON, wrong hook, or a request/context that violates the schema.",
    401: "Missing, invalid, expired, replayed or wrongly addressed client JWT (AUTH_MODE=jwt).",
    403: "Authenticated client not allowed (tenant allow-list), or the request's fhirServer may not receive "
         "its access token (FHIR_SERVER_ALLOWLIST).",
    404: "Unknown service id.",
    405: "A known service answers POST only.",
    422: "Feedback for a card this service never issued, or a suggestion the card did not carry.",
    412: "Prefetch missing and no FHIR server to fetch it from (or the FHIR server could not provide it).",
    413: "Request body larger than MAX_BODY_BYTES.",
    415: "The body is not JSON (Content-Type).",
    503: "The feedback/audit store is unavailable.",
}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": _ERROR_TEXT[c],
                     "content": {"application/json": {"schema": _ref("Error")}}} for c in codes}


def _json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _generic_operations(app: Flask) -> dict[str, Any]:
    """Sandbox / SMART pages and anything else registered by other blueprints, from the URL map."""
    paths: dict[str, Any] = {}
    op_ids: set[str] = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        blueprint = rule.endpoint.split(".", 1)[0] if "." in rule.endpoint else ""
        if not blueprint or blueprint in _HANDLED:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        params = [{"name": a, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
                  for a in sorted(rule.arguments)]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op_id = f"{rule.endpoint}.{method.lower()}"
            if op_id in op_ids:  # one view under two paths (e.g. /sandbox and /sandbox/): ids must be unique
                op_id += "." + (re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root") + ("_slash" if path.endswith("/") else "")
            op_ids.add(op_id)
            op: dict[str, Any] = {
                "tags": [blueprint],
                "summary": f"{blueprint} page: {rule.rule}",
                "operationId": op_id,
                "responses": {"default": {"description": "HTML page, JSON data or a redirect (see README)."}},
            }
            if params:
                op["parameters"] = params
            paths.setdefault(path, {})[method.lower()] = op
    return paths


def build_openapi(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of this app (its settings decide the security requirement)."""
    runtime = app.extensions.get("mmcds")
    settings = getattr(runtime, "settings", None)
    jwt_mode = getattr(settings, "auth_mode", "none") == "jwt"
    security: list[dict[str, list[str]]] = [{"cdsClientJwt": []}] if jwt_mode else [{"cdsClientJwt": []}, {}]
    service_ids = list(SERVICES)
    service_param = {"name": "service_id", "in": "path", "required": True,
                     "description": "A service id from discovery: " + ", ".join(
                         f"`{s.id}` ({s.hook})" for s in SERVICES.values()),
                     "schema": {"type": "string", "enum": service_ids}}
    components = {"Error": ERROR_SCHEMA, **copy.deepcopy(embedded_schemas())}
    components["FeedbackRequest"] = {
        "type": "object",
        "description": "CDS Hooks 2.0.1 feedback; a bare feedback item is also accepted.",
        "required": ["feedback"],
        "properties": {"feedback": {"type": "array", "minItems": 1, "maxItems": 100,
                                    "items": _ref(_component_for("feedback"))}},
    }
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "MMCDS: CDS Hooks service for relapsed/refractory multiple myeloma",
            "version": _version(),
            "description": (
                "CDS Hooks 2.0.1 services (discovery, service invocation, feedback) and operations endpoints. "
                "Names and error codes are fixed by CONTRACT.md; every card carries the `org.mmcds.card` "
                "extension described by `CdsResponse_extension`."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "tags": [{"name": "cds-hooks"}, {"name": "operations"}],
        "paths": {
            "/cds-services": {"get": {
                "tags": ["cds-hooks"], "operationId": "discovery", "summary": "CDS Hooks discovery",
                "responses": {"200": _json_body(_ref("CdsDiscovery"), "The services, their hooks and prefetch templates.")},
            }},
            "/cds-services/{service_id}": {"get": {
                "tags": ["cds-hooks"], "operationId": "getService", "summary": "Not an operation: 404 or 405 JSON",
                "parameters": [service_param],
                "responses": _errors(404, 405),
            }, "post": {
                "tags": ["cds-hooks"], "operationId": "invokeService", "summary": "Invoke a CDS service",
                "parameters": [service_param],
                "security": security,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CdsRequest")}}},
                "responses": {
                    "200": _json_body(_ref("CdsServiceResponse"), "Cards (possibly none) for the EHR to show."),
                    **_errors(400, 401, 403, 404, 412, 413, 415),
                },
            }},
            "/cds-services/{service_id}/feedback": {"get": {
                "tags": ["cds-hooks"], "operationId": "getFeedback", "summary": "Not an operation: 404 or 405 JSON",
                "parameters": [service_param],
                "responses": _errors(404, 405),
            }, "post": {
                "tags": ["cds-hooks"], "operationId": "feedback", "summary": "What the clinician did with the cards",
                "parameters": [service_param],
                "security": security,
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref("FeedbackRequest")}}},
                "responses": {
                    "200": _json_body({"type": "object", "maxProperties": 0},
                                      "Stored (the same decision posted again is stored once)."),
                    **_errors(400, 401, 403, 404, 413, 415, 422, 503),
                },
            }},
            "/healthz": {"get": {
                "tags": ["operations"], "operationId": "healthz", "summary": "Liveness: the process answers",
                "responses": {"200": _json_body({"type": "object", "required": ["status"],
                                                 "properties": {"status": {"const": "ok"}}}, "Alive.")},
            }},
            "/readyz": {"get": {
                "tags": ["operations"], "operationId": "readyz",
                "summary": "Readiness: knowledge loaded and the store reachable",
                "responses": {
                    "200": _json_body(_ref("Readiness"), "Ready to take traffic."),
                    "503": _json_body(_ref("Readiness"), "Not ready (the store is unreachable, or AUTH_MODE=jwt "
                                                         "and no trusted issuer's key set can be read)."),
                },
            }},
            "/metrics": {"get": {
                "tags": ["operations"], "operationId": "metrics", "summary": "Prometheus metrics (text format)",
                "responses": {"200": {"description": "Prometheus text exposition format.",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}},
            }},
            "/openapi.json": {"get": {
                "tags": ["operations"], "operationId": "openapi", "summary": "This document",
                "responses": {"200": _json_body({"type": "object", "required": ["openapi", "paths"]},
                                                "OpenAPI 3.1 document.")},
            }},
        },
        "components": {
            "schemas": {
                **components,
                "Readiness": {
                    "type": "object", "required": ["status", "knowledgeVersion", "store"],
                    "properties": {"status": {"enum": ["ready", "not ready"]}, "knowledgeVersion": {"type": "string"},
                                   "knowledgeDigest": {"type": "string"}, "store": {"enum": ["ok", "unreachable"]},
                                   "auth": {"type": "string"},
                                   "issuers": {"type": "object", "additionalProperties": {"type": "string"}}},
                },
            },
            "securitySchemes": {
                "cdsClientJwt": {
                    "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": (
                        "CDS Hooks 2.0.1 client JWT signed ES384 or RS384 by a trusted issuer (TRUSTED_ISSUERS "
                        "JWKS); `aud` = the exact endpoint URL, with `iss`, `exp`, `iat`, `jti` and a `kid` header. "
                        "Required when AUTH_MODE=jwt."
                    ),
                },
            },
        },
    }
    base = getattr(settings, "public_base_url", None)
    if base:
        doc["servers"] = [{"url": base}]
    for path, ops in _generic_operations(app).items():
        doc["paths"].setdefault(path, {}).update(ops)
    return doc


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("mmcds")
    except Exception:  # running from a checkout that was never installed
        return "0+unknown"


@bp.get("/openapi.json")
def openapi_document() -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    doc = app.extensions.get("mmcds.openapi")
    if doc is None:  # built on first use: every blueprint is registered by then
        doc = app.extensions["mmcds.openapi"] = build_openapi(app)
    return json_response(doc)
