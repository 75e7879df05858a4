"""No resource dict, however odd, crashes build_record or read_draft_orders."""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from record_helpers import knowledge

from cds_service.record.drafts import read_draft_orders
from cds_service.record.model import PatientRecord
from cds_service.record.normalise import build_record

TYPES = ["MedicationStatement", "MedicationRequest", "MedicationAdministration", "MedicationOrder", "Medication",
         "Condition", "Observation", "DiagnosticReport", "Procedure", "Patient", "Bundle", "ServiceRequest", "Foo"]
KEYS = ["resourceType", "id", "status", "code", "coding", "system", "display", "text", "valueQuantity", "value",
        "unit", "component", "medicationCodeableConcept", "medicationReference", "reference", "medication", "concept",
        "effectivePeriod", "start", "end", "effectiveDateTime", "authoredOn", "dosageInstruction", "timing", "repeat",
        "boundsPeriod", "statusReason", "reasonCode", "clinicalStatus", "verificationStatus", "onsetDateTime",
        "performedDateTime", "performedPeriod", "contained", "ingredient", "itemCodeableConcept", "conclusion",
        "presentedForm", "data", "contentType", "valueCodeableConcept", "valueString", "valueInteger", "note",
        "entry", "resource", "doseAndRate", "doseQuantity", "route", "birthDate", "dosage", "dose", "selections",
        "draftOrders", "method", "category", "intent", "reasonEnded", "dateWritten", "dateEnded"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(TYPES + ["2023-04", "2023-13-45", "C90.02", "109989006",
                                                                   "http://loinc.org", "33358-3", "97509-4",
                                                                   "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                                   "342369", "#m", "Medication/m", "g/L", "FISH",
                                                                   "t(11;14) detected", "69548-6", "active"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)), max_leaves=30)
resources = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8).map(
    lambda d: d if "resourceType" in d else {**d, "resourceType": TYPES[len(d) % len(TYPES)]})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(resources, json_values), max_size=6))
def test_build_record_never_raises(items):
    rec = build_record(items, date(2026, 1, 1), knowledge())
    assert isinstance(rec, PatientRecord)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.sampled_from(["order-select", "order-sign", "patient-view"]))
def test_read_draft_orders_never_raises(draft, hook):
    out = read_draft_orders({"draftOrders": draft, "selections": draft}, knowledge(), hook)
    assert isinstance(out, list)


@settings(max_examples=200, deadline=None)
@given(st.lists(resources, max_size=4))
def test_draft_orders_from_odd_bundles(items):
    out = read_draft_orders({"draftOrders": {"resourceType": "Bundle", "entry": [{"resource": r} for r in items]}},
                            knowledge(), "order-select")
    assert isinstance(out, list)


def test_non_list_input():
    for bad in [None, {}, "x", 5, [None, 1, "a", []]]:
        assert isinstance(build_record(bad, date(2026, 1, 1), knowledge()), PatientRecord)  # type: ignore[arg-type]


# Realistic resources whose fields hypothesis replaces with odd values: every reader path is reached
# and must cope without even the per-resource safety net ("could not be read" notes).
SEEDS = [
    {"resourceType": "MedicationStatement", "id": "s", "status": "stopped",
     "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "342369"}]},
     "effectivePeriod": {"start": "2021-01-01", "end": "2022-01-01"}, "statusReason": [{"text": "progression"}],
     "reasonCode": [{"text": "disease progression"}], "note": [{"text": "stopped"}],
     "dosage": [{"route": {"text": "PO"}, "doseAndRate": [{"doseQuantity": {"value": 40, "unit": "mg"}}],
                 "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}}]},
    {"resourceType": "MedicationRequest", "id": "r", "status": "completed", "intent": "order",
     "medicationReference": {"reference": "#m", "display": "Kyprolis"},
     "contained": [{"resourceType": "Medication", "id": "m", "code": {"text": "x"},
                    "ingredient": [{"itemCodeableConcept": {"text": "carfilzomib"}}]}],
     "authoredOn": "2022-01-01", "dispenseRequest": {"validityPeriod": {"start": "2022-01-01", "end": "2022-02-01"}},
     "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"start": "2022-01-02"},
                                                  "boundsDuration": {"value": 3, "code": "wk"}}, "event": ["2022-01-03"]},
                            "text": "20 mg", "route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]}}]},
    {"resourceType": "MedicationAdministration", "id": "a", "status": "completed",
     "medication": {"concept": {"text": "dexamethasone"}}, "effectivePeriod": {"start": "2022-01-01"},
     "dosage": {"dose": {"value": 40, "unit": "mg"}, "route": {"text": "IV"}}},
    {"resourceType": "MedicationOrder", "id": "o", "status": "stopped", "dateWritten": "2020-01-01", "dateEnded": "2020-02-01",
     "reasonEnded": {"text": "toxicity"}, "medicationCodeableConcept": {"text": "Velcade"}},
    {"resourceType": "MedicationDispense", "id": "d", "status": "completed", "whenHandedOver": "2024-01-01",
     "daysSupply": {"value": 28}, "medicationCodeableConcept": {"text": "Revlimid"}},
    {"resourceType": "Condition", "id": "c", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C90.02"}]},
     "clinicalStatus": {"coding": [{"code": "relapse"}]}, "verificationStatus": {"coding": [{"code": "confirmed"}]},
     "onsetDateTime": "2024-01-01", "recordedDate": "2024-01-02"},
    {"resourceType": "Observation", "id": "ds", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "97509-4"}]},
     "effectiveDateTime": "2024-01-01", "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "271299001"}]}},
    {"resourceType": "Observation", "id": "mp", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "33358-3"}]},
     "effectiveDateTime": "2024-01-01", "valueQuantity": {"value": 1.2, "unit": "g/dL"}},
    {"resourceType": "Observation", "id": "ec", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "89247-1"}]},
     "effectiveDateTime": "2024-01-01", "valueCodeableConcept": {"text": "ECOG 1"}},
    {"resourceType": "Observation", "id": "v", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "69548-6"}]},
     "effectiveDateTime": "2024-01-01", "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA9633-4"}]},
     "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "81291-7"}]}, "valueCodeableConcept": {"text": "t(11;14)"}},
                   {"code": {"coding": [{"system": "http://loinc.org", "code": "81258-6"}]}, "valueQuantity": {"value": 40, "unit": "%"}},
                   {"code": {"coding": [{"system": "http://loinc.org", "code": "82155-3"}]}, "valueQuantity": {"value": 3}},
                   {"code": {"coding": [{"system": "http://loinc.org", "code": "48018-6"}]}, "valueCodeableConcept": {"text": "HGNC:11998"}}]},
    {"resourceType": "Observation", "id": "f", "status": "final", "code": {"text": "FISH panel"}, "effectiveDateTime": "2024-01-01",
     "valueString": "TP53 deletion detected in 30%", "component": [{"code": {"text": "t(4;14)"}, "valueString": "negative"}],
     "note": [{"text": "1q21 gain 3 copies"}], "interpretation": [{"text": "abnormal"}]},
    {"resourceType": "DiagnosticReport", "id": "dr", "status": "final", "code": {"text": "FISH"}, "conclusion": "t(4;14) detected",
     "presentedForm": [{"contentType": "text/plain", "data": "VFA1MyBkZWxldGlvbiBkZXRlY3RlZA=="}],
     "conclusionCode": [{"text": "del(17p)"}], "effectiveDateTime": "2024-01-01"},
    {"resourceType": "Procedure", "id": "p", "status": "completed", "code": {"coding": [{"system": "http://snomed.info/sct", "code": "58776007"}]},
     "performedPeriod": {"start": "2020-01-01"}, "usedCode": [{"text": "melphalan"}]},
    {"resourceType": "Procedure", "id": "q", "status": "completed", "code": {"text": "Abecma infusion"}, "performedDateTime": "2020-01-01"},
    {"resourceType": "Patient", "id": "pt", "birthDate": "1950-01-01", "gender": "male"},
]
odd = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8),
                st.lists(st.none(), max_size=2), st.dictionaries(st.text(max_size=3), st.none(), max_size=2),
                st.just({"coding": "x"}), st.just([{"coding": [None]}]), st.just("2023-02-30"))


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


ALL_PATHS = [(i, p) for i, seed in enumerate(SEEDS) for p in _paths(seed) if p != ("resourceType",)]


def _replace(node, path, value):
    import copy

    out = copy.deepcopy(node)
    cur = out
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return out


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), odd), min_size=1, max_size=3))
def test_mutated_realistic_resources_are_read_without_errors(mutations):
    resources = [dict(s) for s in SEEDS]
    for (i, path), value in mutations:
        try:
            resources[i] = _replace(resources[i], path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    rec = build_record(resources, date(2026, 1, 1), knowledge())
    assert not [n for n in rec.notes if "could not be read" in n], rec.notes
