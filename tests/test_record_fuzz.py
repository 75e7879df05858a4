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
