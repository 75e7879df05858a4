"""CDS Hooks suggestions: delete the unsafe draft, create the alternative's MedicationRequests.

Every created resource is an R4 MedicationRequest validated with `fhir.resources.R4B` before it is
returned (a malformed suggestion is dropped, never sent). Medications are coded with the RxNorm
ingredient from `mappings/agents.yaml` only when the catalog names a source for the code; otherwise
text only. No dose is ever invented: dosing is left to the prescriber/protocol.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from cds_service.clinical.options import Rules
from cds_service.record.model import DraftOrder

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NOTE = "Suggested by MM-CDS{why}. Dose and schedule per protocol and prescriber (not set by the service)."
log = logging.getLogger(__name__)


def patient_reference(drafts: list[DraftOrder], patient_id: str | None) -> str | None:
    for d in drafts:
        subject = d.resource.get("subject") if isinstance(d.resource, dict) else None
        if isinstance(subject, dict) and isinstance(subject.get("reference"), str):
            return subject["reference"]
        patient = d.resource.get("patient") if isinstance(d.resource, dict) else None  # DSTU2 MedicationOrder
        if isinstance(patient, dict) and isinstance(patient.get("reference"), str):
            return patient["reference"]
    return f"Patient/{patient_id}" if patient_id else None


def _validated(resource: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return MedicationRequest.model_validate(resource).model_dump(mode="json", exclude_none=True)
    except (ValidationError, ValueError, TypeError) as exc:  # never ship an invalid resource
        log.warning("suggested MedicationRequest dropped: %s", type(exc).__name__)
        return None


@functools.lru_cache(maxsize=1024)
def _validated_template(concept_json: str, intent: str, note: str, route_text: str | None) -> str | None:
    """Validate one MedicationRequest shape once per process (fhir.resources validation costs ~1 ms);
    the subject is a placeholder replaced per request (a Reference string stays valid)."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": intent,
        "medicationCodeableConcept": json.loads(concept_json),
        "subject": {"reference": "Patient/placeholder"},
        "note": [{"text": note}],
    }
    if route_text:
        resource["dosageInstruction"] = [{"text": f"Route: {route_text}", "route": {"text": route_text}}]
    valid = _validated(resource)
    return json.dumps(valid) if valid is not None else None


def medication_request(
    rules: Rules, *, agent: str | None, text: str, patient_ref: str | None, intent: str = "proposal",
    why: str = "", route_text: str | None = None,
) -> dict[str, Any] | None:
    """One draft MedicationRequest for an agent (coded when verified) or a free-text medication."""
    concept: dict[str, Any] = {"text": text}
    ingredient = (rules.agents.get(agent) or {}).get("ingredient") if agent else None
    if ingredient:
        concept["coding"] = [{"system": RXNORM, "code": str(ingredient["code"]),
                              "display": str(ingredient.get("display") or agent)}]
    template = _validated_template(json.dumps(concept, sort_keys=True), intent,
                                   NOTE.format(why=f" ({why})" if why else ""), route_text)
    if template is None:
        return None
    return _instantiate(template, patient_ref)


def _instantiate(template: str, patient_ref: str | None) -> dict[str, Any]:
    """A fresh resource from a validated template, for this patient (or none named)."""
    resource = json.loads(template)
    if patient_ref:
        resource["subject"] = {"reference": patient_ref}
    else:
        resource.pop("subject", None)
    return resource


def _intent(drafts: list[DraftOrder]) -> str:
    for d in drafts:
        intent = d.resource.get("intent") if isinstance(d.resource, dict) else None
        if intent in ("proposal", "plan", "order"):
            return intent
    return "proposal"


def regimen_actions(rules: Rules, regimen: str, patient_ref: str | None, intent: str,
                    skip_agents: set[str] | None = None) -> list[dict[str, Any]]:
    reg = rules.regimens[regimen]
    actions = []
    for agent in reg.get("components", []):
        if skip_agents and agent in skip_agents:
            continue
        mr = medication_request(rules, agent=agent, text=agent.replace("-", " "), patient_ref=patient_ref,
                                intent=intent, why=f"{regimen}: {reg.get('name', regimen)}")
        if mr is None:
            return []
        actions.append({"type": "create", "description": f"Draft {agent} ({regimen})", "resource": mr})
    return actions


def replace_suggestions(rules: Rules, drafts: list[DraftOrder], regimens: list[str],
                        patient_id: str | None, kept_agents: set[str] | None = None) -> list[dict[str, Any]]:
    """One suggestion per alternative regimen: delete the draft(s), create the regimen's drugs
    (except those already drafted in orders that stay, e.g. the dexamethasone next to it)."""
    patient_ref = patient_reference(drafts, patient_id)
    intent = _intent(drafts)
    out = []
    for i, regimen in enumerate(regimens):
        creates = regimen_actions(rules, regimen, patient_ref, intent, skip_agents=kept_agents)
        if not creates:
            continue
        deletes = [{"type": "delete", "description": f"Remove draft {d.display or d.ref}", "resourceId": [d.ref]}
                   for d in drafts if d.ref]
        out.append({
            "label": f"Replace with {regimen} ({rules.regimens[regimen].get('name', regimen)})",
            "isRecommended": i == 0,
            "actions": deletes + creates,
        })
    return out


def delete_suggestion(drafts: list[DraftOrder], label: str) -> dict[str, Any]:
    return {"label": label, "isRecommended": False,
            "actions": [{"type": "delete", "description": f"Remove draft {d.display or d.ref}", "resourceId": [d.ref]}
                        for d in drafts if d.ref]}


def add_suggestions(rules: Rules, drafts: list[DraftOrder], regimens: list[str],
                    patient_id: str | None) -> list[dict[str, Any]]:
    """Doublet → triplet: create only the agents of the regimen that are not drafted yet."""
    patient_ref = patient_reference(drafts, patient_id)
    intent = _intent(drafts)
    drafted = {a for d in drafts for a in d.agents}
    out = []
    for i, regimen in enumerate(regimens):
        creates = regimen_actions(rules, regimen, patient_ref, intent, skip_agents=drafted)
        if not creates:
            continue
        missing = [a for a in rules.regimens[regimen].get("components", []) if a not in drafted]
        out.append({"label": f"Make it {regimen}: add {', '.join(missing)}", "isRecommended": i == 0,
                    "actions": creates})
    return out


@functools.lru_cache(maxsize=64)
def _service_request_template(text: str, note: str) -> str | None:
    resource = {"resourceType": "ServiceRequest", "status": "draft", "intent": "proposal",
                "code": {"text": text}, "subject": {"reference": "Patient/placeholder"}, "note": [{"text": note}]}
    try:
        return json.dumps(ServiceRequest.model_validate(resource).model_dump(mode="json", exclude_none=True))
    except (ValidationError, ValueError, TypeError):
        return None


def service_request(text: str, patient_ref: str | None, why: str) -> dict[str, Any] | None:
    """A text-only draft ServiceRequest (no LOINC code is invented for the test)."""
    template = _service_request_template(text, f"Suggested by MM-CDS ({why}).")
    if template is None:
        return None
    return _instantiate(template, patient_ref)


def supportive_suggestions(rules: Rules, drafts: list[DraftOrder], items: list[dict[str, str]],
                           patient_id: str | None, why: str) -> list[dict[str, Any]]:
    patient_ref = patient_reference(drafts, patient_id)
    out = []
    for i, item in enumerate(items):
        if item.get("resourceType") == "ServiceRequest":
            mr = service_request(item["text"], patient_ref, why)
        else:
            mr = medication_request(rules, agent=None, text=item["text"], patient_ref=patient_ref, intent="proposal",
                                    why=why)
        if mr is not None:
            out.append({"label": item["label"], "isRecommended": i == 0,
                        "actions": [{"type": "create", "description": item["label"], "resource": mr}]})
    return out


def route_suggestion(rules: Rules, draft: DraftOrder, route_text: str, label: str,
                     patient_id: str | None) -> dict[str, Any] | None:
    """Bortezomib IV → SC: update the draft with the route changed (keeping the prescriber's dose),
    or, when the draft is not a valid R4 MedicationRequest, delete it and create an SC one."""
    res = copy.deepcopy(draft.resource) if isinstance(draft.resource, dict) else {}
    if res.get("resourceType") == "MedicationRequest":
        dosage = res.get("dosageInstruction")
        dosage = [dict(x) for x in dosage if isinstance(x, dict)] if isinstance(dosage, list) else []
        if not dosage:
            dosage = [{}]
        for x in dosage:
            x["route"] = {"text": route_text}
        res["dosageInstruction"] = dosage
        updated = _validated(res)
        if updated is not None:
            return {"label": label, "isRecommended": True,
                    "actions": [{"type": "update", "description": f"Change route to {route_text}", "resource": updated}]}
    agent = draft.agents[0] if draft.agents else None
    mr = medication_request(rules, agent=agent, text=(agent or draft.display or "medication").replace("-", " "),
                            patient_ref=patient_reference([draft], patient_id), intent=_intent([draft]),
                            why="route changed to subcutaneous", route_text=route_text)
    if mr is None:
        return None
    return {"label": label, "isRecommended": True,
            "actions": [{"type": "delete", "description": f"Remove IV draft {draft.ref}", "resourceId": [draft.ref]},
                        {"type": "create", "description": f"Draft {agent or 'medication'} {route_text}", "resource": mr}]}
