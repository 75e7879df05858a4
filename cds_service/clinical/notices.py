"""Decide the patient-view notices (CONTRACT notice codes) from the clinical state.

Pure decision code: returns `Notice` objects with the parameters the card texts need
(`cards/notices.yaml` holds indicator, templates and sources) and where each belongs. A notice
becomes a card of its own only when it changes what to do now (`own_card`): salvage ASCT at a
first relapse before the next line starts, restaging while no relapse FISH is on file and no line
has started. Every other notice is one line in the card it belongs to (`home`: the options card,
or the treatment-history card), so a chart opens with few cards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cds_service.clinical.fitness import overruled_by_fitness
from cds_service.clinical.model import ClinicalState
from cds_service.clinical.options import rules_for, salvage_asct_status
from cds_service.clinical.setting import decide_setting
from cds_service.knowledge.loader import Knowledge

RELAPSE_SETTINGS = frozenset({
    "first-relapse-len-sensitive", "first-relapse-len-refractory", "first-relapse-after-anti-cd38",
    "later-relapse", "triple-class-refractory",
})
SETTING_LABELS = {
    "later-relapse": "Second or later relapse",
    "triple-class-refractory": "Triple-class refractory",
}


FIRST_RELAPSE = frozenset({"first-relapse-len-sensitive", "first-relapse-len-refractory", "first-relapse-after-anti-cd38"})
# a FISH done this many days before the recorded progression still counts as restaging for it
RELAPSE_FISH_WINDOW_DAYS = 45


@dataclass
class Notice:
    code: str
    params: dict[str, Any] = field(default_factory=dict)
    own_card: bool = False  # changes what to do now: a card of its own
    home: str = "options"  # otherwise one line in this card: "options" or "state"


def awaiting_next_line(state: ClinicalState) -> bool:
    """Relapsed and no line started since the last progression (the decision is still open)."""
    if not state.relapsed or state.on_therapy:
        return False
    last = state.lines[-1] if state.lines else None
    if last is not None and last.start is not None and state.last_progression is not None:
        return last.start < state.last_progression  # a line started on/after it is the next line
    return True


def relapse_fish_on_file(state: ClinicalState) -> bool:
    """A FISH result dated at (or shortly before) the last progression: restaging was done."""
    tested = state.cytogenetics.last_tested
    if tested is None or state.last_progression is None:
        return False
    return (state.last_progression - tested).days <= RELAPSE_FISH_WINDOW_DAYS


def _date(d: Any) -> str:
    return d.isoformat() if d is not None and hasattr(d, "isoformat") else "date unknown"


def _fmt_months(m: float | int | None) -> str:
    if m is None:
        return "unknown"
    return f"{m:.0f}" if float(m).is_integer() else f"{m:.1f}"


def decide_notices(state: ClinicalState, knowledge: Knowledge, setting: str | None = None) -> list[Notice]:
    """The notices that apply, in display order (most urgent first)."""
    if not state.multiple_myeloma:
        return []
    rules = rules_for(knowledge)
    setting = setting or decide_setting(state)
    out: list[Notice] = []
    relapse = setting in RELAPSE_SETTINGS
    prog = f" documented on {_date(state.last_progression)}" if state.last_progression else ""

    if setting == "insufficient-data":
        missing = ", ".join(state.missing) if state.missing else "lines of therapy with dates and how each ended"
        out.append(Notice("insufficient-data", {"missing": missing}))  # the options card says it
    if state.plasma_cell_leukemia:
        out.append(Notice("plasma-cell-leukemia", {"dated": ""}))
    if state.extramedullary:
        out.append(Notice("extramedullary-disease", {"dated": ""}))
    cyto = state.cytogenetics
    if cyto.high_risk:
        out.append(Notice("high-risk-cytogenetics", _high_risk_params(cyto)))
    if state.short_response:
        m = state.last_response_months
        months_text = f"{_fmt_months(m)} months < 18" if m is not None else "under 18 months"
        out.append(Notice("short-response", {"months": _fmt_months(m), "months_text": months_text,
                                             "progression": f", {_date(state.last_progression)}" if state.last_progression else ""}))
    if relapse:
        salvage = salvage_asct_status(state, rules)
        if salvage:
            decision_open = setting in FIRST_RELAPSE and awaiting_next_line(state)
            out.append(Notice(f"salvage-asct-{salvage}", _salvage_params(state, salvage, rules),
                              own_card=decision_open and salvage in ("candidate", "discuss"), home="state"))
    if setting in ("later-relapse", "triple-class-refractory"):
        prognosis = ""
        if setting == "triple-class-refractory":
            prognosis = ("Median overall survival once anti-CD38-refractory **8.6 months**, **5.6 months** when "
                         "penta-refractory (MAMMOTH — Gandhi et al., Leukemia 2019; the 5.6 months often quoted for "
                         "all triple-class refractory disease is the penta-refractory subgroup). T-cell redirection "
                         "or clinical trial enrolment matters.")
        out.append(Notice("clinical-trial", {"setting_label": SETTING_LABELS[setting], "prognosis": prognosis}))
    if relapse:
        extra = ""
        if state.plasma_cell_leukemia or state.extramedullary:
            extra = " Plasma cell leukaemia / extramedullary disease is documented: restage fully before choosing."
        if cyto.tested:
            fish_advice = ("bone marrow with FISH for progression-associated abnormalities only (del(17p), "
                           "1q gain/amplification); primary translocations found before stand and are not repeated")
        else:
            fish_advice = ("bone marrow with a full FISH panel — none is on record yet: del(17p), t(4;14), t(14;16), "
                           "t(14;20), 1q gain and del(1p32) for the IMS/IMWG 2025 risk, and t(11;14), which opens "
                           "venetoclax")
        restage_open = awaiting_next_line(state) and not relapse_fish_on_file(state)
        if restage_open:
            out.append(Notice("restage-at-relapse", {"progression": prog, "extra": extra, "fish_advice": fish_advice},
                              own_card=True))
    return out


def _salvage_params(state: ClinicalState, salvage: str, rules: Any) -> dict[str, Any]:
    t = state.transplant
    months = t.months_asct_to_progression
    sal = rules.modifiers.get("salvageAsct", {})
    maint = {True: "; this patient had maintenance", False: "; this patient had no maintenance", None: ""}[
        t.maintenance_after_asct]
    if t.salvage_why and salvage == t.salvage_asct:
        why, reason = t.salvage_why, t.salvage_reason
    elif salvage == "not-recommended" and overruled_by_fitness(state, rules):
        why = "ECOG 3 or more, or over 75"
        reason = (f"ECOG {state.ecog if state.ecog is not None else 'unknown'}, age "
                  f"{state.age if state.age is not None else 'unknown'}: salvage ASCT is not recommended at "
                  "ECOG >= 3 or over 75, whatever the time since the first ASCT.")
    elif not t.prior_asct and salvage == "not-recommended":
        why = "never transplanted and not transplant-eligible"
        reason = ("No prior ASCT is recorded and the patient is not transplant-eligible (frail, or over 70; "
                  f"age {state.age if state.age is not None else 'unknown'}).")
    elif not t.prior_asct:
        why = "never transplanted, transplant-eligible"
        reason = ("No prior ASCT is recorded and the patient is transplant-eligible: an ASCT should be "
                  "considered at relapse in patients never transplanted (IMWG 2021).")
    elif months is None:
        why = "months from ASCT to progression unknown"
        reason = "A prior ASCT is recorded but the time from ASCT to progression cannot be computed from the record."
    else:
        why = f"{_fmt_months(months)} months from ASCT to progression" + (
            f" (< {sal.get('seed002MinMonths', 18)})" if salvage == "not-recommended" else "")
        when = f" (ASCT {_date(t.asct_date)})" if t.asct_date else ""
        reason = f"First ASCT{when}; progression **{_fmt_months(months)} months** later{maint}."
    threshold = (sal.get("seed003MinMonthsWithoutMaintenance", 24) if t.maintenance_after_asct is False
                 else sal.get("seed003MinMonthsWithMaintenance", 36))
    return {"months": _fmt_months(months), "why": why, "reason": reason, "maintenance": maint,
            "threshold": threshold, "second_asct": sal.get("secondAsctText", "") if t.prior_asct else ""}


def _high_risk_params(cyto: Any) -> dict[str, Any]:
    """The findings that met IMS/IMWG 2025: short in the summary, in full in the detail."""
    reasons = list(cyto.high_risk_reasons) or ["high-risk abnormality"]
    short = [r.split(" (")[0].replace("β2-microglobulin", "β2M").replace(", clone size not reported", "")
             for r in reasons]
    findings = "IMS/IMWG 2025: " + ", ".join(short)
    if len(findings) > 70:  # the summary stays under 140 characters; the detail lists them all
        findings = "IMS/IMWG 2025: " + short[0] + (f" +{len(short) - 1} more" if len(short) > 1 else "")
    if len(findings) > 70:
        findings = f"IMS/IMWG 2025, {len(short)} finding{'s' if len(short) > 1 else ''}"
    notes = "".join(f"\n\n- {n}" for n in cyto.risk_notes)
    return {"findings": findings, "reasons": "; ".join(reasons), "notes": notes, "dated": ""}
