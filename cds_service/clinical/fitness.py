"""Fitness applied in every setting (IMWG 2021 / seed 003; trial populations of T-cell redirection).

Frail (documented, or ECOG >= 2 when frailty is not stated) or over 75: gentler, all-oral options
first; carfilzomib triplets and intensive chemotherapy are not preferred. CAR-T and bispecific
trials enrolled ECOG 0-1: at ECOG >= 3 they are not preferred, at ECOG 2 they carry the caveat.
Salvage ASCT is not recommended at ECOG >= 3 or over 75. Thresholds are data (cards/modifiers.yaml).
"""

from __future__ import annotations

from cds_service.clinical.model import ClinicalState
from cds_service.clinical.rules import Rules


def age_over(state: ClinicalState, limit: int) -> bool:
    return bool(state.over_75 or (state.age is not None and state.age > limit))


def is_frail_or_old(state: ClinicalState, rules: Rules) -> bool:
    """Frail (or ECOG >= 2, when the state leaves `frail` unknown) or over 75: the same effect (003)."""
    mod = rules.modifiers.get("frailOrOver75", {})
    ecog_min = mod.get("ecogAtLeast", 2)
    return bool(state.frail or age_over(state, mod.get("ageOver", 75))
                or (state.frail is None and state.ecog is not None and state.ecog >= ecog_min))


def tcr_ecog_verdict(state: ClinicalState, rules: Rules) -> tuple[str, str] | None:
    """("cap", note) at ECOG >= 3, ("caveat", note) at ECOG 2, None otherwise."""
    fit = rules.modifiers.get("fitness", {})
    if state.ecog is None:
        return None
    if state.ecog >= fit.get("tcrNotPreferredEcogAtLeast", 3):
        return "cap", fit.get("tcrNotPreferredNote", "ECOG {ecog}: not preferred").format(ecog=state.ecog)
    if state.ecog >= fit.get("tcrCaveatEcogAtLeast", 2):
        return "caveat", fit.get("tcrCaveatNote", "ECOG {ecog}: trials enrolled ECOG 0-1").format(ecog=state.ecog)
    return None


def unfit_for_salvage_asct(state: ClinicalState, rules: Rules) -> bool:
    fit = rules.modifiers.get("fitness", {})
    return bool((state.ecog is not None and state.ecog >= fit.get("salvageAsctNotRecommendedEcogAtLeast", 3))
                or age_over(state, fit.get("salvageAsctNotRecommendedAgeOver", 75)))


def salvage_asct_status(state: ClinicalState, rules: Rules) -> str | None:
    """The state's salvage-ASCT verdict (computed from the data thresholds only if the state left it
    empty), overruled to not-recommended at ECOG >= 3 or over 75."""
    t = state.transplant
    verdict = t.salvage_asct or _from_thresholds(state, rules)
    if verdict in ("candidate", "discuss") and unfit_for_salvage_asct(state, rules):
        return "not-recommended"
    return verdict


def overruled_by_fitness(state: ClinicalState, rules: Rules) -> bool:
    """True when only fitness (ECOG >= 3, > 75) turns a candidate/discuss verdict into not-recommended."""
    base = state.transplant.salvage_asct or _from_thresholds(state, rules)
    return base in ("candidate", "discuss") and unfit_for_salvage_asct(state, rules)


def _from_thresholds(state: ClinicalState, rules: Rules) -> str | None:
    t = state.transplant
    if not state.relapsed:
        return None
    sal = rules.modifiers.get("salvageAsct", {})
    if not t.prior_asct:
        return "candidate" if t.transplant_eligible else None
    months = t.months_asct_to_progression
    if months is None:
        return None
    lo = sal.get("seed002MinMonths", 18)
    hi = sal.get("seed003MinMonthsWithoutMaintenance", 24) if t.maintenance_after_asct is False else sal.get(
        "seed003MinMonthsWithMaintenance", 36)
    if months < lo:
        return "not-recommended"
    if months >= hi:
        return "candidate"
    return "discuss"
