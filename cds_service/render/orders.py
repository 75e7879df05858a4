"""order-select / order-sign finding cards, with suggestions and override reasons.

Shapes only: `cds_service.clinical.orders.check_orders` decides; texts, indicators and override
reasons come from `cards/order_checks.yaml`; every card goes through `make_card`.
"""

from __future__ import annotations

import logging
from typing import Any

from cds_service.clinical.model import ClinicalState
from cds_service.clinical.options import Rules, effective_refractory, rules_for
from cds_service.clinical.orders import Finding, check_orders
from cds_service.config import Settings
from cds_service.knowledge.loader import Knowledge
from cds_service.record.model import DraftOrder, PatientRecord
from cds_service.render.advice import fitting_regimens, len_maintenance_pitfall
from cds_service.render.cards import make_card
from cds_service.render.patient_view import fill, names, say, source_label
from cds_service.render.suggestions import (
    add_suggestions,
    delete_suggestion,
    regimen_name,
    replace_suggestions,
    route_suggestion,
    supportive_codes,
    supportive_suggestions,
)
from cds_service.render.text import card_source, fit, opens_work, strip_chart_refs

log = logging.getLogger(__name__)
SEVERITY = {"critical": 0, "warning": 1, "info": 2}


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def override_reasons(rules: Rules, codes: list[str]) -> list[dict[str, str]]:
    system = rules.checks.get("overrideReasonSystem", "https://mmcds.example.org/fhir/CodeSystem/override-reason")
    catalog = rules.checks.get("overrideReasons", {})
    return [{"system": system, "code": c, "display": catalog[c]} for c in codes if c in catalog]


def _suggestions(f: Finding, rules: Rules, spec: dict[str, Any], patient_id: str | None,
                 all_drafts: list[DraftOrder], codes: dict[str, dict[str, str]],
                 state: ClinicalState | None = None) -> list[dict[str, Any]]:
    if f.replace_with:
        # the whole drafted regimen is replaced: every drafted order, not only the flagged one
        regimens = fitting_regimens(f.replace_with, state, rules.regimens) if state is not None else f.replace_with
        out = replace_suggestions(rules, all_drafts, regimens, patient_id)
        return out or [delete_suggestion(f.drafts, "Remove the draft")]
    if f.code == "venetoclax-without-t11-14":
        return [delete_suggestion(f.drafts, "Remove the venetoclax draft")]
    if f.add_from:
        regimens = fitting_regimens(f.add_from, state, rules.regimens) if state is not None else f.add_from
        return add_suggestions(rules, all_drafts, regimens, patient_id)
    if f.supportive:
        return supportive_suggestions(rules, f.drafts, f.supportive, patient_id, why=f.code, codes=codes)
    if f.route_change and f.drafts:
        s = route_suggestion(rules, f.drafts[0], f.route_change, spec.get("suggestLabel", "Change route"), patient_id)
        return [s] if s else []
    return []


def _fitted_params(f: Finding, state: ClinicalState | None, rules: Rules) -> dict[str, Any]:
    """The finding's parameters with advice rebuilt for this patient (never a class the patient failed)."""
    params = dict(f.params)
    if state is None:
        return params
    eff = effective_refractory(state, rules)
    alternatives = say(rules, str(params.get("alternatives", "")))
    regimens = fitting_regimens(f.replace_with or f.add_from, state, rules.regimens)
    if f.replace_with or f.add_from:
        alternatives = ", ".join(regimen_name(rules, r) for r in regimens) or "see the next-line options card"
    if f.code == "refractory-agent-ordered" and params.get("pitfall") and "lenalidomide" in f.agents \
            and state.progressed_on_len_maintenance:
        params["pitfall"] = len_maintenance_pitfall(state, eff, "")
    if alternatives:
        params["alternatives"] = alternatives
    for key in ("reason", "when", "prior", "fish"):
        if isinstance(params.get(key), str):
            params[key] = strip_chart_refs(params[key])
    params["order"] = ", ".join(d.display for d in f.drafts if d.display) or "the draft order"
    return params


def _not_one_click(f: Finding, rules: Rules, state: ClinicalState | None, suggestions: list[dict[str, Any]]) -> str:
    """Name the alternatives the card cannot draft in one click (a drug without a verified code)."""
    regimens = f.replace_with or f.add_from
    if state is not None:
        regimens = fitting_regimens(regimens, state, rules.regimens)
    offered = {lab.split(" ")[2].rstrip(":") for lab in (s["label"] for s in suggestions)
               if lab.startswith(("Replace with ", "Make it "))}
    missing = []
    for r in regimens:
        if r in offered or (rules.regimens.get(r) or {}).get("orderable") is False:
            continue
        uncoded = [a for a in (rules.regimens.get(r) or {}).get("components", [])
                   if not (rules.agents.get(a) or {}).get("ingredient")]
        if uncoded:
            missing.append(f"{r} ({', '.join(a.replace('-', ' ') for a in uncoded)})")
    if not missing:
        return ""
    return ("Order by hand: " + "; ".join(missing)
            + " — no verified RxNorm code here for that drug, so no one-click order is offered.")


def finding_card(f: Finding, rules: Rules, patient_id: str | None = None,
                 all_drafts: list[DraftOrder] | None = None, state: ClinicalState | None = None,
                 codes: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    spec = rules.checks.get("checks", {}).get(f.code, {})
    sources = rules.source_dicts(spec.get("sources", []))
    links = [{"label": source_label(s), "url": s["url"], "type": "absolute"}
             for s in sources[:3] if opens_work(s.get("url"))]
    params = _fitted_params(f, state, rules)
    detail = say(rules, fill(spec.get("detail", ""), params)).strip()
    suggestions = _suggestions(f, rules, spec, patient_id, all_drafts or f.drafts, codes or {}, state)
    manual = _not_one_click(f, rules, state, suggestions)
    if manual:
        detail += f"\n\n_{manual}_"
    src = card_source(sources, "Relapsed myeloma guidance", names(rules))
    return make_card(
        kind="finding", rule_id=f"order/{f.code}", knowledge_version=rules.version,
        summary=_capitalised(say(rules, fill(spec.get("summary", f.code), params))),
        indicator=spec.get("indicator", "warning"),
        detail=fit([(0, detail)]) if detail else None, sources=sources,
        source_label=src["label"], source_url=src.get("url"),
        suggestions=suggestions or None,
        selection_behavior="at-most-one",
        override_reasons=override_reasons(rules, spec.get("overrideReasons", [])) or None, links=links or None,
        extra={"code": f.code, "agents": list(f.agents), "orders": list(f.orders)},
    )


def order_cards(
    state: ClinicalState,
    drafts: list[DraftOrder],
    knowledge: Knowledge,
    settings: Settings,
    hook: str,
    record: PatientRecord | None = None,
    patient_id: str | None = None,
) -> list[dict[str, Any]]:
    """Finding cards, most severe first; [] for patients without myeloma."""
    if not state.multiple_myeloma:
        return []
    rules = rules_for(knowledge)
    if patient_id is None and record is not None:
        patient_id = record.patient_id
    findings = check_orders(state, drafts, knowledge, settings, hook, record=record)
    codes = supportive_codes(knowledge)
    cards = []
    for f in findings:
        try:
            cards.append(finding_card(f, rules, patient_id, drafts, state, codes))
        except (KeyError, ValueError, TypeError, IndexError):  # one bad text must not cost the other cards
            log.exception("finding card failed", extra={"ruleId": f"order/{f.code}"})
    cards.sort(key=lambda c: SEVERITY.get(c["indicator"], 3))
    return cards
