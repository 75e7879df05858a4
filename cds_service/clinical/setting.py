"""Decide the treatment setting (CONTRACT vocabulary) from the clinical state.

Precedence (first match wins), so every state maps to exactly one setting:
1. `insufficient-data` — the state engineer flagged no usable history, or progression is documented
   but no line of therapy is known (a guess would be worse than saying so).
2. `on-therapy` — relapsed before, but the current line is running with no progression since it
   began (CLINICAL_LOGIC §5): not awaiting a next line, whatever the refractoriness (even TCR).
   A first line running without any relapse stays `not-relapsed` (rule 4).
3. `not-relapsed` — relapsed before, but the last line is finished (a completed course, a CAR-T
   given) and no progression came since it began: remission, no relapse menu.
4. `triple-class-refractory` — refractory to an IMiD, a PI and an anti-CD38 (any line count: the
   CAR-T / trial question dominates every other choice, 000).
5. `not-relapsed` — no progression after a line (on first-line therapy or in remission).
6. `later-relapse` — two or more prior lines.
7. one prior line: `first-relapse-after-anti-cd38` (anti-CD38 refractory) before
   `first-relapse-len-refractory` (lenalidomide refractory, progression on lenalidomide maintenance
   or stopped < 6 months before progression, 003) before `first-relapse-len-sensitive`.
"""

from __future__ import annotations

from cds_service.clinical.model import ClinicalState

SETTINGS = (
    "first-relapse-len-sensitive",
    "first-relapse-len-refractory",
    "first-relapse-after-anti-cd38",
    "later-relapse",
    "triple-class-refractory",
    "on-therapy",
    "not-relapsed",
    "insufficient-data",
)


def len_refractory_like(state: ClinicalState) -> bool:
    """Lenalidomide refractory for choosing: IMWG refractory, on maintenance, or recent exposure (003)."""
    return bool(
        state.is_refractory("lenalidomide") or state.progressed_on_len_maintenance or state.len_recent_exposure
    )


def anti_cd38_refractory(state: ClinicalState) -> bool:
    return state.classes.get("anti-CD38") == "refractory" or any(
        state.is_refractory(a) for a in ("daratumumab", "isatuximab")
    )


def class_refractory(state: ClinicalState, cls: str) -> bool:
    from cds_service.clinical.model import CLASS_AGENTS

    return state.classes.get(cls) == "refractory" or any(state.is_refractory(a) for a in CLASS_AGENTS.get(cls, ()))


def decide_setting(state: ClinicalState) -> str:
    """One CONTRACT setting for the state; see the module docstring for the precedence."""
    if state.insufficient_data:
        return "insufficient-data"
    if state.relapsed and state.on_therapy:
        return "on-therapy"
    if state.relapsed and state.off_therapy_no_progression:
        return "not-relapsed"
    tcr = state.triple_class_refractory or all(class_refractory(state, c) for c in ("IMiD", "PI", "anti-CD38"))
    if tcr:
        return "triple-class-refractory"
    if not state.relapsed:
        if state.prior_lines == 0 and not state.on_first_line:
            return "insufficient-data"
        return "not-relapsed"
    if state.prior_lines == 0:
        return "insufficient-data"
    if state.prior_lines >= 2:
        return "later-relapse"
    if anti_cd38_refractory(state):
        return "first-relapse-after-anti-cd38"
    if len_refractory_like(state):
        return "first-relapse-len-refractory"
    return "first-relapse-len-sensitive"
