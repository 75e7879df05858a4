"""Order drafts of order-select / order-sign requests (context.draftOrders).

Besides the clean R4 MedicationRequest (any drug encoding, contained or bundle-referenced Medication),
the shapes real clients send: the CDS Hooks sandbox's draft (no intent, reasonCode and category as
single objects) and its first call without any medication, a DSTU2 MedicationOrder, a ServiceRequest.
The deliberately non-conformant ones are marked in expected.yaml (`nonconformant: true`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tools.vignettes.chart import Chart, DataError, Spec, drug_concept

Draft = Callable[[Chart, Spec, str, list[dict[str, Any]]], dict[str, Any]]
KINDS: dict[str, Draft] = {}
SELECTABLE = ("MedicationRequest", "ServiceRequest", "MedicationOrder")


def kind(name: str) -> Callable[[Draft], Draft]:
    def register(fn: Draft) -> Draft:
        KINDS[name] = fn
        return fn

    return register


@kind("request")
def request(chart: Chart, spec: Spec, as_of: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A draft MedicationRequest: a drug (drug keys), `dosage` text (default 'as directed'), `route` text.
    `medication: reference` puts the Medication into the draft bundle ahead of the request."""
    d = spec.drug()
    r: dict[str, Any] = {"resourceType": "MedicationRequest", "id": spec.req("id"), "status": "draft",
                         "intent": "order", **chart.medication(d, entries), "subject": chart.subject,
                         "authoredOn": as_of}
    di: dict[str, Any] = {"text": spec.opt("dosage") or "as directed"}
    if spec.has("route"):
        di["route"] = {"text": spec.req("route")}
    r["dosageInstruction"] = [di]
    return r


@kind("sandbox")
def sandbox(chart: Chart, spec: Spec, as_of: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The CDS Hooks sandbox's draft: no intent, reasonCode / category as objects (invalid R4), a structured
    daily `dose` {value, unit} and `dispense` {quantity, unit, days}."""
    dose, dispense = spec.req("dose"), spec.req("dispense")
    return {
        "resourceType": "MedicationRequest", "id": spec.req("id"), "status": "draft",
        "subject": chart.subject, "authoredOn": as_of, "medicationCodeableConcept": drug_concept(spec.drug()),
        "reasonCode": {"text": spec.opt("reason", "Multiple myeloma")},
        "category": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                                 "code": "outpatient"}]},
        "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": dose["value"], "unit": dose["unit"]}}],
                               "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}],
        "dispenseRequest": {"numberOfRepeatsAllowed": 0,
                            "quantity": {"value": dispense["quantity"], "unit": dispense["unit"]},
                            "expectedSupplyDuration": {"value": dispense["days"], "unit": "days"}},
    }


@kind("sandbox-no-medication")
def sandbox_first_call(chart: Chart, spec: Spec, as_of: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The sandbox's first call, before a drug is picked: nothing to check, must not fail."""
    return {"resourceType": "MedicationRequest", "id": spec.req("id"), "status": "draft", "subject": chart.subject,
            "reasonCode": {"text": ""}, "category": {"text": "outpatient"}}


@kind("dstu2-order")
def dstu2_order(chart: Chart, spec: Spec, as_of: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A DSTU2 MedicationOrder (what the sandbox's default FHIR server speaks)."""
    return {"resourceType": "MedicationOrder", "id": spec.req("id"), "status": "draft",
            "patient": chart.subject, "dateWritten": as_of,
            "prescriber": {"reference": "Practitioner/vignette-hematologist"},
            "medicationCodeableConcept": drug_concept(spec.drug()),
            "dosageInstruction": [{"text": spec.opt("dosage") or "as directed"}]}


@kind("service")
def service(chart: Chart, spec: Spec, as_of: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A draft ServiceRequest named by text (`service`), with `category` and `reason` texts."""
    return {"resourceType": "ServiceRequest", "id": spec.req("id"), "status": "draft", "intent": "order",
            "category": [{"text": spec.req("category")}], "code": {"text": spec.req("service")},
            "subject": chart.subject, "authoredOn": as_of, "reasonCode": [{"text": spec.req("reason")}]}


def draft_orders(chart: Chart, order: dict[str, Any], as_of: str) -> dict[str, Any]:
    """The hook context of one order scenario: draftOrders and, for order-select, the selections (all drafted
    orders unless `selections` names them)."""
    spec = Spec(f"order {order.get('name')}", order)
    name, hook = spec.req("name"), spec.req("hook")
    if hook not in ("order-select", "order-sign"):
        raise DataError(f"order {name}: hook {hook!r} is not order-select or order-sign")
    entries: list[dict[str, Any]] = []
    for item in spec.req("drafts"):
        dspec = Spec(f"order {name} draft", item)
        k = dspec.opt("kind", "request")
        if k not in KINDS:
            raise DataError(f"order {name}: draft kind {k!r} is not one of {sorted(KINDS)}")
        entries.append(KINDS[k](chart, dspec, as_of, entries))
        dspec.done()
    ctx: dict[str, Any] = {"draftOrders": {"resourceType": "Bundle", "type": "collection",
                                           "entry": [{"resource": r} for r in entries]}}
    selections = spec.opt("selections")
    if hook == "order-select":
        ctx["selections"] = selections or [f"{r['resourceType']}/{r['id']}" for r in entries
                                           if r["resourceType"] in SELECTABLE]
    spec.done()
    return ctx
