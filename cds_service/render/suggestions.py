"""CDS Hooks suggestions: a named regimen, exactly; supportive drugs; a route change.

Every created resource is an R4 MedicationRequest validated with `fhir.resources.R4B` before it is
returned (a malformed suggestion is dropped, never sent), coded with the RxNorm ingredient from
`mappings/agents.yaml` / `mappings/supportive.yaml` (a code is used only with its source) and with
text. A drug without a verified code is never created: the card text names it. No dose is ever
invented: dosing is left to the prescriber/protocol.

What an EHR must support to apply them (docs/ say the same): `create` of a draft MedicationRequest
and `delete` of a draft order by `resourceId`, all actions of one suggestion applied together;
`update` of a draft (route change).
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
from cds_service.knowledge.loader import Knowledge
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


def rxnorm_ingredient(rules: Rules, agent: str) -> dict[str, Any] | None:
    """The verified RxNorm ingredient of an anti-myeloma agent (mappings/agents.yaml), or None."""
    ingredient = (rules.agents.get(agent) or {}).get("ingredient")
    return ingredient if ingredient and ingredient.get("code") else None


def supportive_codes(knowledge: Knowledge) -> dict[str, dict[str, str]]:
    """name (lower case) -> verified RxNorm code of supportive drugs (mappings/supportive.yaml codes)."""
    def build(k: Knowledge) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        sup = k.mappings.get("supportive") or {}
        for cat in (sup.get("categories") or {}).values():
            for c in cat.get("codes") or []:
                if c.get("system") == "rxnorm" and c.get("code") and c.get("source") and c.get("display"):
                    out.setdefault(str(c["display"]).lower(), {"code": str(c["code"]), "display": str(c["display"])})
        return out
    return knowledge.index("render-supportive-codes", build)


def medication_request(
    rules: Rules, *, agent: str | None, text: str, patient_ref: str | None, intent: str = "proposal",
    why: str = "", route_text: str | None = None, code: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """One draft MedicationRequest, RxNorm-coded with text, or None when no verified code exists.

    CDS clients file a created order by its code (the reference sandbox refuses one with text only),
    so a drug without a verified code is never offered as a create; the card text names it instead.
    """
    if code is None and agent:
        code = rxnorm_ingredient(rules, agent)
    if code is None:
        return None
    concept: dict[str, Any] = {"text": text,
                               "coding": [{"system": RXNORM, "code": str(code["code"]),
                                           "display": str(code.get("display") or agent or text)}]}
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


def regimen_name(rules: Rules, regimen: str) -> str:
    """'PVd (pomalidomide + bortezomib + dexamethasone)'; a single-agent regimen named once."""
    name = str((rules.regimens.get(regimen) or {}).get("name") or "")
    if not name or name.lower() == regimen.lower():
        return regimen
    if name.lower().startswith(regimen.lower()):
        return name
    return f"{regimen} ({name})"


def _delete(d: DraftOrder) -> dict[str, Any]:
    return {"type": "delete", "description": f"Remove draft {d.display or d.ref}", "resourceId": [d.ref]}


def regimen_suggestion(rules: Rules, regimen: str, drafts: list[DraftOrder], patient_id: str | None,
                       recommended: bool = False) -> dict[str, Any] | None:
    """A suggestion that leaves exactly `regimen` drafted: create its missing drugs, delete every
    drafted anti-myeloma order with a drug outside it, keep the drafts of its own drugs.

    Creates come first: a client that applies only the first action of a suggestion (the reference
    sandbox's one-medication order form) then shows a drug of the named regimen, never an empty
    form. None when the regimen cannot be reached exactly (a drug without a verified code, or a
    draft that cannot be removed because it has no id).
    """
    reg = rules.regimens.get(regimen) or {}
    comps = [str(a) for a in reg.get("components", [])]
    if not comps or reg.get("orderable") is False:
        return None
    wanted = set(comps)
    keep = [d for d in drafts if set(d.agents) <= wanted]
    drop = [d for d in drafts if not set(d.agents) <= wanted]
    if any(not d.ref for d in drop):
        return None
    kept_agents = {a for d in keep for a in d.agents}
    patient_ref = patient_reference(drafts, patient_id)
    intent = _intent(drafts)
    creates = []
    for agent in comps:
        if agent in kept_agents:
            continue
        mr = medication_request(rules, agent=agent, text=agent.replace("-", " "), patient_ref=patient_ref,
                                intent=intent, why=f"{regimen}: {reg.get('name', regimen)}")
        if mr is None:
            return None
        creates.append({"type": "create", "description": f"Draft {agent.replace('-', ' ')} ({regimen})", "resource": mr})
    if not creates and not drop:
        return None
    missing = [a for a in comps if a not in kept_agents]
    if drop:
        label = f"Replace with {regimen_name(rules, regimen)}"
    else:
        label = f"Make it {regimen}: add {', '.join(a.replace('-', ' ') for a in missing)}"
    return {"label": label, "isRecommended": recommended, "actions": creates + [_delete(d) for d in drop]}


def replace_suggestions(rules: Rules, drafts: list[DraftOrder], regimens: list[str],
                        patient_id: str | None) -> list[dict[str, Any]]:
    """One suggestion per alternative regimen; each yields exactly the regimen it names."""
    out = []
    for regimen in regimens:
        s = regimen_suggestion(rules, regimen, drafts, patient_id, recommended=not out)
        if s is not None:
            out.append(s)
    return out


def delete_suggestion(drafts: list[DraftOrder], label: str) -> dict[str, Any]:
    return {"label": label, "isRecommended": False, "actions": [_delete(d) for d in drafts if d.ref]}


def add_suggestions(rules: Rules, drafts: list[DraftOrder], regimens: list[str],
                    patient_id: str | None) -> list[dict[str, Any]]:
    """Doublet → triplet: the same exact-regimen suggestions (usually only additions)."""
    return replace_suggestions(rules, drafts, regimens, patient_id)


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
                           patient_id: str | None, why: str,
                           codes: dict[str, dict[str, str]] | None = None) -> list[dict[str, Any]]:
    patient_ref = patient_reference(drafts, patient_id)
    out = []
    for item in items:
        if item.get("resourceType") == "ServiceRequest":
            mr = service_request(item["text"], patient_ref, why)
        else:
            mr = medication_request(rules, agent=None, text=item["text"], patient_ref=patient_ref, intent="proposal",
                                    why=why, code=(codes or {}).get(item["text"].strip().lower()))
        if mr is not None:
            out.append({"label": item["label"], "isRecommended": not out,
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
            "actions": [{"type": "create", "description": f"Draft {agent or 'medication'} {route_text}", "resource": mr},
                        {"type": "delete", "description": f"Remove IV draft {draft.ref}", "resourceId": [draft.ref]}]}
