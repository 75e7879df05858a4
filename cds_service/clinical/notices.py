"""Decide the patient-view notices (CONTRACT notice codes) from the clinical state.

Pure decision code: returns `Notice` objects with the parameters the card texts need
(`cards/notices.yaml` holds indicator, templates and sources).
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


@dataclass
class Notice:
    code: str
    params: dict[str, Any] = field(default_factory=dict)


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
        out.append(Notice("insufficient-data", {"missing": missing}))
    if state.plasma_cell_leukemia:
        out.append(Notice("plasma-cell-leukemia", {"dated": ""}))
    if state.extramedullary:
        out.append(Notice("extramedullary-disease", {"dated": ""}))
    cyto = state.cytogenetics
    if cyto.high_risk:
        hr = [f for f in cyto.findings if f != "t(11;14)"] or list(cyto.findings)
        out.append(Notice("high-risk-cytogenetics", {"findings": ", ".join(hr) or "high-risk abnormality",
                                                     "dated": ""}))
    if state.short_response:
        m = state.last_response_months
        months_text = f"{_fmt_months(m)} months < 18" if m is not None else "under 18 months"
        out.append(Notice("short-response", {"months": _fmt_months(m), "months_text": months_text,
                                             "progression": f", {_date(state.last_progression)}" if state.last_progression else ""}))
    if relapse:
        salvage = salvage_asct_status(state, rules)
        if salvage:
            out.append(Notice(f"salvage-asct-{salvage}", _salvage_params(state, salvage, rules)))
    if setting in ("later-relapse", "triple-class-refractory"):
        prognosis = ""
        if setting == "triple-class-refractory":
            prognosis = ("Median OS once anti-CD38-refractory **8.6 months**, **5.6 months** when penta-refractory "
                         "(MAMMOTH, Gandhi 2019; supersedes 003 quoting 5.6 months for all triple-class refractory "
                         "disease); T-cell redirection or clinical trial enrolment matters.")
        out.append(Notice("clinical-trial", {"setting_label": SETTING_LABELS[setting], "prognosis": prognosis}))
    if relapse:
        extra = ""
        if state.plasma_cell_leukemia or state.extramedullary:
            extra = " Plasma cell leukaemia / extramedullary disease is documented: restage fully before choosing."
        if cyto.tested:
            fish_advice = ("bone marrow with FISH for progression-associated abnormalities only (del(17p), "
                           "1q gain/amplification); primary translocations found before stand and are not repeated")
        else:
            fish_advice = ("bone marrow with FISH for high-risk abnormalities (del(17p), t(4;14), t(14;16), 1q) — "
                           "none is on record yet")
        out.append(Notice("restage-at-relapse", {"progression": prog, "extra": extra, "fish_advice": fish_advice}))
    return out


def _salvage_params(state: ClinicalState, salvage: str, rules: Any) -> dict[str, Any]:
    t = state.transplant
    months = t.months_asct_to_progression
    sal = rules.modifiers.get("salvageAsct", {})
    maint = {True: "; this patient had maintenance", False: "; this patient had no maintenance", None: ""}[
        t.maintenance_after_asct]
    if salvage == "not-recommended" and overruled_by_fitness(state, rules):
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
        reason = ("No prior ASCT is recorded and the patient is transplant-eligible: 003 — salvage ASCT should be "
                  "systematically considered in patients who never received a transplant; 002 agrees.")
    elif months is None:
        why = "months from ASCT to progression unknown"
        reason = "A prior ASCT is recorded but the time from ASCT to progression cannot be computed from the record."
    else:
        why = f"{_fmt_months(months)} months from ASCT to progression" + (
            f" (< {sal.get('seed002MinMonths', 18)})" if salvage == "not-recommended" else "")
        when = f" (ASCT {_date(t.asct_date)})" if t.asct_date else ""
        reason = (f"First ASCT{when}; progression **{_fmt_months(months)} months** later. "
                  f"Thresholds: 002 ≥ {sal.get('seed002MinMonths', 18)} months; 003 ≥ "
                  f"{sal.get('seed003MinMonthsWithMaintenance', 36)} months "
                  f"({sal.get('seed003MinMonthsWithoutMaintenance', 24)} without maintenance){maint}.")
    return {"months": _fmt_months(months), "why": why, "reason": reason, "maintenance": maint}
