"""Hundreds of odd requests and prefetch payloads: the service answers, never with a 5xx."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.hooks.registry import PREFETCH
from tests.builders import bundle, len_refractory_patient

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=20)

FHIR_KEYS = ["resourceType", "id", "status", "subject", "patient", "code", "medicationCodeableConcept",
             "medicationReference", "effectivePeriod", "effectiveDateTime", "authoredOn", "statusReason",
             "valueCodeableConcept", "valueQuantity", "valueString", "component", "onsetDateTime",
             "clinicalStatus", "performedDateTime", "dosageInstruction", "contained", "birthDate", "entry", "link"]
TYPES = ["Patient", "Condition", "Observation", "MedicationStatement", "MedicationRequest", "MedicationAdministration",
         "Medication", "Procedure", "DiagnosticReport", "Bundle", "OperationOutcome", "MedicationOrder", "Basic"]

resource = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(TYPES)},
    optional={k: (st.just("p1") if k == "id" else json_value) for k in FHIR_KEYS if k != "resourceType"},
)
prefetch_value = st.one_of(json_value, resource, st.builds(lambda rs: bundle(*rs), st.lists(resource, max_size=5)))
prefetch = st.dictionaries(st.sampled_from(sorted(PREFETCH) + ["other"]), prefetch_value, max_size=len(PREFETCH) + 1)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


@FUZZ
@given(prefetch=prefetch)
def test_fuzzed_prefetch_never_5xx(client, prefetch):
    body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/1", "patientId": "p1"}, "prefetch": prefetch}
    resp = client.post("/cds-services/mm-next-line", json=body)
    assert resp.status_code in (200, 400, 412), resp.data[:300]


@FUZZ
@given(mutation=st.dictionaries(st.sampled_from(sorted(PREFETCH)), resource, max_size=4))
def test_myeloma_prefetch_with_odd_resources_answers_200(client, mutation):
    pre = len_refractory_patient()
    for key, res in mutation.items():
        pre[key] = bundle(*(pre[key].get("entry") and [e["resource"] for e in pre[key]["entry"]] or []), res) \
            if isinstance(pre[key], dict) and pre[key].get("resourceType") == "Bundle" else res
    body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/1", "patientId": "p1"}, "prefetch": pre}
    resp = client.post("/cds-services/mm-next-line", json=body)
    assert resp.status_code in (200, 412), resp.data[:300]


@FUZZ
@given(body=json_value, service=st.sampled_from(["mm-next-line", "mm-order-check", "mm-order-sign"]))
def test_fuzzed_bodies_never_5xx(client, body, service):
    resp = client.post(f"/cds-services/{service}", json=body)
    assert resp.status_code < 500


@FUZZ
@given(drafts=st.one_of(json_value, st.builds(lambda rs: bundle(*rs), st.lists(resource, max_size=4))),
       selections=st.one_of(st.lists(st.text(max_size=20), max_size=3), json_value))
def test_fuzzed_draft_orders_never_5xx(client, drafts, selections):
    body = {"hook": "order-select", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "PractitionerRole/1", "patientId": "p1", "selections": selections,
                        "draftOrders": drafts},
            "prefetch": len_refractory_patient()}
    resp = client.post("/cds-services/mm-order-check", json=body)
    assert resp.status_code in (200, 400), resp.data[:300]
