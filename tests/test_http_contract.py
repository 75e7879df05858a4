"""Discovery and the error contract (CONTRACT § HTTP): every failure is JSON with its status."""

from __future__ import annotations

import json

import pytest

from cds_service.hooks import schemas
from tests.builders import bundle, hook_request, len_refractory_patient
from tests.conftest import SPEC_FIXTURES


def test_discovery_lists_the_three_services(client):
    resp = client.get("/cds-services")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert schemas.errors("discovery", doc) == []
    by_id = {s["id"]: s for s in doc["services"]}
    assert {k: v["hook"] for k, v in by_id.items()} == {
        "mm-next-line": "patient-view", "mm-order-check": "order-select", "mm-order-sign": "order-sign"}
    for service in by_id.values():
        assert service["title"] and service["description"] and service["usageRequirements"]


def test_prefetch_templates_use_only_root_level_context_tokens(client):
    import re

    for service in client.get("/cds-services").get_json()["services"]:
        for query in service["prefetch"].values():
            tokens = re.findall(r"\{\{([^}]*)\}\}", query)
            assert tokens and all(t.strip() == "context.patientId" for t in tokens), query
            assert "." not in query.split("?")[0] or query.startswith("Patient/")
        kinds = {q.split("?")[0].split("/")[0] for q in service["prefetch"].values()}
        assert {"Patient", "Condition", "Observation", "Procedure", "MedicationStatement", "MedicationRequest",
                "MedicationAdministration"} <= kinds


def test_unknown_service_is_404(call_service):
    resp = call_service("no-such-service", hook_request("patient-view", {}))
    assert resp.status_code == 404


def test_malformed_json_is_400(client):
    resp = client.post("/cds-services/mm-next-line", data=b'{"hook": ', content_type="application/json")
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "malformed JSON"


def test_not_json_is_415(client):
    resp = client.post("/cds-services/mm-next-line", data=b"hook=patient-view", content_type="text/plain")
    assert resp.status_code == 415
    assert set(resp.get_json()) >= {"error", "detail"}


def test_body_without_content_type_is_read_as_json(client):
    body = json.dumps(hook_request("patient-view", len_refractory_patient())).encode()
    resp = client.post("/cds-services/mm-next-line", data=body, headers={"Content-Type": ""})
    assert resp.status_code == 200, resp.data[:200]
    resp = client.post("/cds-services/mm-next-line", data=b"not json", headers={"Content-Type": ""})
    assert resp.status_code == 400


def test_trailing_slash_reaches_the_same_endpoints(client):
    assert client.get("/cds-services/").status_code == 200
    resp = client.post("/cds-services/mm-next-line/", json=hook_request("patient-view", len_refractory_patient()))
    assert resp.status_code == 200


def test_wrong_hook_is_400(call_service):
    resp = call_service("mm-next-line", hook_request("order-sign", {}, draftOrders=bundle()))
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "wrong hook"


@pytest.mark.parametrize("body", [
    [], "text", 42, None, {}, {"hook": "patient-view"},
    {"hook": "patient-view", "hookInstance": "x"},
    {"hook": "patient-view", "hookInstance": "x", "context": {"userId": "Practitioner/1"}},
    {"hook": "patient-view", "hookInstance": "x", "context": {"patientId": 5, "userId": "Practitioner/1"}},
    {"hook": "patient-view", "hookInstance": "x", "context": [], "prefetch": {}},
    {"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "p", "userId": "u"},
     "fhirAuthorization": {"access_token": "t"}},
])
def test_schema_violations_are_400(call_service, body):
    resp = call_service("mm-next-line", body)
    assert resp.status_code == 400


def test_order_select_without_draft_orders_is_400(call_service):
    resp = call_service("mm-order-check", hook_request("order-select", {}, selections=[]))
    assert resp.status_code == 400
    assert "draftOrders" in resp.get_json()["detail"]


def test_body_too_large_is_413(app_config):
    from cds_service.app import create_app

    app = create_app({**app_config, "MAX_BODY_BYTES": 1000})
    resp = app.test_client().post("/cds-services/mm-next-line", data=b"{" + b" " * 5000 + b"}",
                                  content_type="application/json")
    assert resp.status_code == 413
    assert set(resp.get_json()) >= {"error", "detail"}


def test_no_prefetch_and_no_fhir_server_is_412(call_service):
    resp = call_service("mm-next-line", hook_request("patient-view", None))
    assert resp.status_code == 412
    body = resp.get_json()
    assert body["operationOutcome"]["resourceType"] == "OperationOutcome"


def test_unknown_endpoint_and_method_are_json(client):
    assert client.get("/nope").status_code == 404
    assert client.get("/nope").get_json()["error"]
    resp = client.get("/cds-services/mm-next-line")
    assert resp.status_code == 405 and resp.get_json()["error"]


def test_spec_example_order_select_answers_412(call_service):
    # The hook library's example has no prefetch and no fhirServer: nothing to read the chart from.
    body = json.loads((SPEC_FIXTURES / "order-select-request.json").read_text())
    assert call_service("mm-order-check", body).status_code == 412


def test_patient_view_for_a_myeloma_patient_has_a_state_card(call_service):
    resp = call_service("mm-next-line", hook_request("patient-view", len_refractory_patient()))
    assert resp.status_code == 200
    cards = resp.get_json()["cards"]
    kinds = [c["extension"]["org.mmcds.card"]["kind"] for c in cards]
    assert kinds.count("state") == 1
    state = next(c for c in cards if c["extension"]["org.mmcds.card"]["kind"] == "state")
    ext = state["extension"]["org.mmcds.card"]
    assert ext["state"]["multipleMyeloma"] is True
    assert ext["state"]["agents"]["lenalidomide"] == "refractory"
    assert ext["state"]["agents"]["bortezomib"] == "exposed"


def test_patient_without_myeloma_gets_no_cards(call_service):
    prefetch = len_refractory_patient()
    prefetch["conditions"] = bundle()
    prefetch["medicationStatements"] = bundle()
    resp = call_service("mm-next-line", hook_request("patient-view", prefetch))
    assert resp.status_code == 200
    assert resp.get_json()["cards"] == []


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["store"] == "ok"


def test_trailing_slash_does_not_bypass_authentication(app_config):
    from cds_service.app import create_app

    app = create_app({**app_config, "AUTH_MODE": "jwt", "TRUSTED_ISSUERS": "{}"})
    client = app.test_client()
    body = hook_request("patient-view", len_refractory_patient())
    for path in ("/cds-services/mm-next-line", "/cds-services/mm-next-line/", "/cds-services/mm-next-line/feedback/"):
        assert client.post(path, json=body).status_code == 401, path
