"""Draft orders of an order-select / order-sign request, read tolerantly.

`context.draftOrders` is a Bundle in CDS Hooks 2.0, but EHRs send single resources, bare lists,
orders without intent/status or without a medication yet, DSTU2 MedicationOrder, ServiceRequest
(lab panels), NutritionOrder and more. Every entry becomes a DraftOrder; nothing raises.
"""

from __future__ import annotations

from typing import Any

from cds_service.knowledge.loader import Knowledge
from cds_service.record.drugs import DrugMatch, is_high_dose_steroid, resolve_drug
from cds_service.record.fhirutil import as_dict, as_list, as_str, concept_texts
from cds_service.record.fish import is_fish_text
from cds_service.record.model import DraftOrder
from cds_service.record.normalise import MedicationLookup, _dosages, _route, medication_of

_MED_ORDER_TYPES = ("MedicationRequest", "MedicationOrder", "MedicationStatement", "MedicationAdministration",
                    "MedicationDispense")
_LAB_ORDER_TYPES = ("ServiceRequest", "ProcedureRequest", "DiagnosticOrder", "DiagnosticRequest", "Task")


def _entries(draft: Any) -> tuple[list[dict], list[tuple[dict, str]]]:
    """(orders, (Medication, fullUrl) pairs) from whatever `draftOrders` holds."""
    orders: list[dict] = []
    meds: list[tuple[dict, str]] = []
    for item in as_list(draft):
        item = as_dict(item)
        if not item:
            continue
        if item.get("resourceType") == "Bundle" or "entry" in item:
            for e in as_list(item.get("entry")):
                e = as_dict(e)
                r = e.get("resource") if isinstance(e.get("resource"), dict) else (e if "resourceType" in e else None)
                if isinstance(r, dict):
                    if r.get("resourceType") == "Medication":
                        meds.append((r, as_str(e.get("fullUrl"))))
                    else:
                        orders.append(r)
        elif "resourceType" in item:
            if item.get("resourceType") == "Medication":
                meds.append((item, ""))
            else:
                orders.append(item)
    return orders, meds


def _selections(context: dict) -> set[str] | None:
    sel = context.get("selections")
    refs = {as_str(s).strip() for s in as_list(sel) if as_str(s).strip()}
    return refs or None


def read_draft_orders(context: dict, knowledge: Knowledge, hook: str) -> list[DraftOrder]:
    """Every draft order as a DraftOrder; `selected` per context.selections for order-select."""
    try:
        ctx = as_dict(context)
        orders, med_list = _entries(ctx.get("draftOrders"))
        meds = MedicationLookup()
        for m, full_url in med_list:
            meds.add(m, full_url)
        selections = _selections(ctx) if hook == "order-select" else None
        out: list[DraftOrder] = []
        for i, res in enumerate(orders):
            try:
                out.append(_one(res, i, meds, knowledge, selections))
            except Exception:  # noqa: BLE001 - an unreadable draft is shown as "unknown order"
                rtype = as_str(res.get("resourceType")) or "Resource"
                out.append(DraftOrder(ref=f"{rtype}/#{i}", resource_type=rtype, display="", resource=res))
        return out
    except Exception:  # noqa: BLE001
        return []


def _one(res: dict, i: int, meds: MedicationLookup, knowledge: Knowledge, selections: set[str] | None) -> DraftOrder:
    rtype = as_str(res.get("resourceType")) or "Resource"
    rid = as_str(res.get("id"))
    ref = f"{rtype}/{rid}" if rid else f"{rtype}/#{i}"
    selected = True
    if selections is not None:
        selected = ref in selections or (bool(rid) and rid in {s.rsplit("/", 1)[-1] for s in selections})
    order = DraftOrder(ref=ref, resource_type=rtype, display="", selected=selected, resource=res)
    if rtype in _MED_ORDER_TYPES:
        drug: DrugMatch = medication_of(res, meds, knowledge)
        order.display = drug.display
        order.agents = list(drug.agents)
        order.category = drug.category
        order.route = _route(res, drug, knowledge)
        order.high_dose_steroid = any(a in ("dexamethasone", "prednisone") for a in drug.agents) and is_high_dose_steroid(
            drug.agents, _dosages(res), drug.display, knowledge)
        return order
    code = res.get("code")
    texts = concept_texts(code) + concept_texts(res.get("category"))
    order.display = texts[0] if texts else ""
    if rtype in _LAB_ORDER_TYPES or code is not None:
        joined = " | ".join(texts)
        order.is_fish_panel = is_fish_text(joined, knowledge)
        if code is not None and not order.is_fish_panel:
            # An infusion ordered as a ServiceRequest ("Daratumumab SC administration") is still that drug.
            m = resolve_drug(code, knowledge)
            order.agents, order.category = list(m.agents), m.category
            order.route = m.route
    return order
