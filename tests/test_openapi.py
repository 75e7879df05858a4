"""`GET /openapi.json`: a complete, self-contained OpenAPI 3.1 document, and schemathesis against it."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cds_service.app import create_app
from cds_service.hooks import schemas
from cds_service.hooks.registry import SERVICES
from cds_service.http.openapi import build_openapi

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-01"


@pytest.fixture(scope="module")
def module_app(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("openapi")
    return create_app({"AUTH_MODE": "none", "DATABASE_URL": f"sqlite:///{tmp / 'store.sqlite3'}", "AS_OF_DATE": AS_OF,
                       "DATA_DIR": str(tmp)})


@pytest.fixture(scope="module")
def doc(module_app) -> dict[str, Any]:
    resp = module_app.test_client().get("/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    return resp.get_json()


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _validator(doc: dict[str, Any], component: str) -> Draft202012Validator:
    """A validator for one component, resolving `#/components/...` refs against the document."""
    registry = Registry().with_resource("urn:openapi", Resource.from_contents(doc, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"urn:openapi#/components/schemas/{component}"}, registry=registry)


def test_document_is_openapi_31_with_every_contract_endpoint(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    paths = doc["paths"]
    assert "get" in paths["/cds-services"]
    assert "post" in paths["/cds-services/{service_id}"]
    assert "post" in paths["/cds-services/{service_id}/feedback"]
    for ops in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert "get" in paths[ops], ops
    invoke = paths["/cds-services/{service_id}"]["post"]
    assert set(invoke["parameters"][0]["schema"]["enum"]) == set(SERVICES)
    for status in ("200", "400", "401", "404", "412", "413", "415"):
        assert status in invoke["responses"], status
    for status in ("400", "401", "404", "412", "413", "415"):
        schema = invoke["responses"][status]["content"]["application/json"]["schema"]
        assert _resolve(doc, schema["$ref"])["required"] == ["error", "detail"]


def test_every_served_route_is_documented(module_app, doc: dict[str, Any]) -> None:
    """Including the sandbox and SMART pages, whoever registers them."""
    for rule in module_app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert method.lower() in doc["paths"].get(path, {}), f"{method} {path} undocumented"
    assert "/sandbox" in doc["paths"] or not any(r.rule.startswith("/sandbox") for r in module_app.url_map.iter_rules())


def test_operation_ids_are_unique_and_path_parameters_declared(doc: dict[str, Any]) -> None:
    """What OpenAPI validators reject: duplicate operationIds, templated paths without their parameter."""
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for path, ops in doc["paths"].items():
        wanted = set(re.findall(r"{([^}]+)}", path))
        for method, op in ops.items():
            assert method in ("get", "post", "put", "delete", "patch")
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == wanted, (method, path)
            assert op["responses"], (method, path)


def test_security_scheme_is_bearer_jwt_and_required_in_jwt_mode(doc: dict[str, Any], tmp_path: Path) -> None:
    scheme = doc["components"]["securitySchemes"]["cdsClientJwt"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    # AUTH_MODE=none (this app): the token is optional.
    assert {} in doc["paths"]["/cds-services/{service_id}"]["post"]["security"]
    jwt_app = create_app({"AUTH_MODE": "jwt", "DATABASE_URL": f"sqlite:///{tmp_path / 's.sqlite3'}",
                          "DATA_DIR": str(tmp_path), "PUBLIC_BASE_URL": "https://cds.example.org"})
    jwt_doc = build_openapi(jwt_app)
    for path in ("/cds-services/{service_id}", "/cds-services/{service_id}/feedback"):
        assert jwt_doc["paths"][path]["post"]["security"] == [{"cdsClientJwt": []}]
    assert jwt_doc["servers"] == [{"url": "https://cds.example.org"}]
    assert "security" not in jwt_doc["paths"]["/cds-services"]["get"]


def test_refs_resolve_and_component_schemas_are_valid(doc: dict[str, Any]) -> None:
    refs = _refs(doc)
    assert refs
    for ref in refs:
        _resolve(doc, ref)
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        assert "$id" not in schema and "$defs" not in schema, name


def test_embedded_schemas_judge_like_the_originals(doc: dict[str, Any], client) -> None:
    """The rewritten components accept and refuse exactly what cds_service/hooks/schemas does."""
    discovery = client.get("/cds-services").get_json()
    assert not list(_validator(doc, "CdsDiscovery").iter_errors(discovery))
    spec_response = json.loads((ROOT / "fixtures" / "spec" / "response.json").read_text())
    assert not list(_validator(doc, "CdsResponse").iter_errors(spec_response))
    # The spec's example cards lack our extension: the service-response schema refuses them, both ways.
    assert schemas.check_response(spec_response)
    assert list(_validator(doc, "CdsServiceResponse").iter_errors(spec_response))
    broken = {"cards": [{"summary": "x" * 141, "indicator": "loud", "source": {}}]}
    assert list(_validator(doc, "CdsResponse").iter_errors(broken))
    request = json.loads((ROOT / "fixtures" / "spec" / "patient-view-request.json").read_text())
    assert not list(_validator(doc, "CdsRequest").iter_errors(request))
    assert list(_validator(doc, "CdsRequest").iter_errors({"hook": "patient-view"}))


def test_real_card_responses_match_the_documented_200_schema(doc: dict[str, Any], client) -> None:
    fixtures = sorted((ROOT / "fixtures" / "patients").glob("*.json"))
    checked = 0
    for path in fixtures:
        body = json.loads(path.read_text())
        sid = next((s.id for s in SERVICES.values() if s.hook == body.get("hook")), None)
        if sid is None:
            continue
        resp = client.post(f"/cds-services/{sid}", json=body)
        if resp.status_code == 200:
            assert not list(_validator(doc, "CdsServiceResponse").iter_errors(resp.get_json())), path.name
            checked += 1
    assert checked or not fixtures


# schemathesis' lazy `from_fixture` loader breaks under pytest 9, so the app under test is built at
# import time, on a temporary store that lives as long as the test process.
_SCHEMATHESIS_TMP = tempfile.TemporaryDirectory(prefix="mmcds-schemathesis-")
_SCHEMATHESIS_APP = create_app({
    "AUTH_MODE": "none", "AS_OF_DATE": AS_OF, "DATA_DIR": _SCHEMATHESIS_TMP.name,
    "DATABASE_URL": f"sqlite:///{Path(_SCHEMATHESIS_TMP.name) / 'store.sqlite3'}",
})
schema = schemathesis.openapi.from_wsgi("/openapi.json", _SCHEMATHESIS_APP)


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_schemathesis_finds_no_server_error_or_schema_violation(case) -> None:
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])
