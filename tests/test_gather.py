"""Gathering: prefetch outcomes, fetching what is missing, and servers that misbehave."""

from __future__ import annotations

import re

import pytest
import responses

from cds_service.config import Settings
from cds_service.gather.gather import DataUnavailable, gather
from cds_service.gather.prefetch import read_prefetch_value, render_template
from cds_service.hooks.registry import PREFETCH
from tests.builders import bundle, hook_request, len_refractory_patient, myeloma_condition, patient

BASE = "https://ehr.example.org/fhir"


def settings(**kw) -> Settings:
    s = Settings(fhir_timeout_s=2.0, fhir_deadline_s=4.0)
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def test_render_template_only_fills_primitive_context_values():
    assert render_template("Condition?patient={{context.patientId}}", {"patientId": "123"}) == "Condition?patient=123"
    assert render_template("Condition?patient={{context.patientId}}", {"patientId": {"x": 1}}) is None
    assert render_template("Condition?patient={{ context.patientId }}", {}) is None


@pytest.mark.parametrize("value,satisfied,problem", [
    (None, False, "null"),
    ({"resourceType": "OperationOutcome", "issue": []}, False, "OperationOutcome"),
    ({"resourceType": "Bundle", "type": "searchset"}, True, None),
    ({"resourceType": "Bundle", "entry": {"resource": {"resourceType": "Condition", "id": "x"}}}, True, None),
    ("garbage", False, "not a FHIR resource"),
    ({"resourceType": "Patient", "id": "p1"}, True, None),
])
def test_prefetch_outcomes(value, satisfied, problem):
    out = read_prefetch_value("k", value)
    assert out.satisfied is satisfied and out.problem == problem


def test_complete_prefetch_needs_no_server():
    result = gather(hook_request("patient-view", len_refractory_patient()), PREFETCH, settings())
    assert result.missing == [] and result.fhir_calls == 0
    assert {r["resourceType"] for r in result.resources} >= {"Patient", "Condition", "MedicationStatement"}


@responses.activate
def test_missing_keys_are_fetched_with_the_bearer_token():
    prefetch = len_refractory_patient()
    del prefetch["conditions"]
    prefetch["observations"] = None
    responses.get(re.compile(rf"{BASE}/Condition\?patient=p1"), json=bundle(myeloma_condition()))
    responses.get(re.compile(rf"{BASE}/Observation\?patient=p1"), json=bundle())
    body = hook_request("patient-view", prefetch)
    body["fhirServer"] = BASE
    body["fhirAuthorization"] = {"access_token": "secret-token", "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "cds"}
    result = gather(body, PREFETCH, settings())
    assert sorted(result.fetched) == ["conditions", "observations"]
    assert all(c.request.headers["Authorization"] == "Bearer secret-token" for c in responses.calls)
    assert any(r["resourceType"] == "Condition" for r in result.resources)


@responses.activate
def test_no_token_fetches_without_authorization_header():
    prefetch = len_refractory_patient()
    del prefetch["conditions"]
    responses.get(re.compile(rf"{BASE}/Condition"), json=bundle(myeloma_condition()))
    body = hook_request("patient-view", prefetch)
    body["fhirServer"] = BASE
    gather(body, PREFETCH, settings())
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_paged_bundle_is_followed_on_the_same_server():
    page1 = bundle(myeloma_condition(cid="c1"))
    page1["link"] = [{"relation": "next", "url": f"{BASE}/Condition?patient=p1&page=2"}]
    responses.get(re.compile(rf"{BASE}/Condition\?patient=p1&page=2"), json=bundle(myeloma_condition(cid="c2")))
    prefetch = len_refractory_patient()
    prefetch["conditions"] = page1
    body = hook_request("patient-view", prefetch)
    body["fhirServer"] = BASE
    result = gather(body, PREFETCH, settings())
    assert {r["id"] for r in result.resources if r["resourceType"] == "Condition"} == {"c1", "c2"}


@pytest.mark.parametrize("kind", ["500", "html", "not-fhir", "operation-outcome"])
@responses.activate
def test_failing_server_for_required_data_is_data_unavailable(kind):
    prefetch = len_refractory_patient()
    del prefetch["conditions"]
    url = re.compile(rf"{BASE}/Condition")
    if kind == "500":
        responses.get(url, status=500, body="boom")
    elif kind == "html":
        responses.get(url, body="<html>login</html>", content_type="text/html")
    elif kind == "not-fhir":
        responses.get(url, json=[1, 2, 3])
    else:
        responses.get(url, json={"resourceType": "OperationOutcome", "issue": []})
    body = hook_request("patient-view", prefetch)
    body["fhirServer"] = BASE
    with pytest.raises(DataUnavailable):
        gather(body, PREFETCH, settings())


@responses.activate
def test_optional_data_missing_is_reported_not_fatal():
    prefetch = len_refractory_patient()
    del prefetch["observations"]
    responses.get(re.compile(rf"{BASE}/Observation"), status=503)
    body = hook_request("patient-view", prefetch)
    body["fhirServer"] = BASE
    result = gather(body, PREFETCH, settings())
    assert result.missing == ["observations"]
    assert result.problems["observations"] == "HTTP 503"


def test_resources_of_another_patient_are_dropped():
    prefetch = len_refractory_patient()
    prefetch["conditions"] = bundle(myeloma_condition(pid="someone-else"))
    prefetch["patient"] = patient("someone-else")
    result = gather(hook_request("patient-view", prefetch), PREFETCH, settings())
    assert not any(r["resourceType"] in ("Condition", "Patient") for r in result.resources)
    assert result.dropped_other_patient == 2


@responses.activate
def test_referenced_medications_are_fetched_in_a_second_round():
    prefetch = len_refractory_patient()
    prefetch["medicationRequests"] = bundle({"resourceType": "MedicationRequest", "id": "mr1", "status": "active",
                                             "intent": "order", "subject": {"reference": "Patient/p1"},
                                             "medicationReference": {"reference": "Medication/med9"}})
    responses.get(f"{BASE}/Medication/med9", json={"resourceType": "Medication", "id": "med9",
                                                   "code": {"text": "Revlimid 10 mg capsule"}})
    body = hook_request("patient-view", prefetch)
    body["fhirServer"] = BASE
    result = gather(body, PREFETCH, settings())
    assert any(r["resourceType"] == "Medication" and r["id"] == "med9" for r in result.resources)
