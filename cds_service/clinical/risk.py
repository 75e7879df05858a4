"""Cytogenetic risk, age / frailty and transplant state (prior ASCT, salvage ASCT assessment).

Sources: seed 002 (high-risk FISH: del(17p), t(4;14), t(14;16), 1q; salvage ASCT if PFS after
the first ASCT ≥ 18 months, never if < 18 months), seed 003 (salvage ASCT not below 36 months of
remission, 24 without maintenance [2A]; frontline ASCT standard for fit patients < 71 years),
seed 004 (cohorts also count t(14;20) and del(1p) as high-risk), CLINICAL_LOGIC §1-2.
"""

from __future__ import annotations

from datetime import date, timedelta

from cds_service.clinical.model import Cytogenetics, TransplantState
from cds_service.record.model import ConditionFact, CytoFinding, LabValue, TransplantEvent

PRIMARY_TRANSLOCATIONS = ("t(4;14)", "t(14;16)", "t(14;20)", "t(11;14)")
ACQUIRED = ("del(17p)", "1q-gain", "del(1p)")
HIGH_RISK = ("del(17p)", "t(4;14)", "t(14;16)", "1q-gain", "t(14;20)", "del(1p)")
ORDER = ("del(17p)", "t(4;14)", "t(14;16)", "t(14;20)", "1q-gain", "del(1p)", "t(11;14)")

SEED_002_MONTHS = 18
SEED_003_MONTHS = 36
SEED_003_NO_MAINT_MONTHS = 24
MAINTENANCE_AFTER_ASCT_DAYS = 183
ELIGIBLE_MAX_AGE = 70


def cytogenetics(findings: list[CytoFinding]) -> Cytogenetics:
    """Primary translocations stand once positive; acquired lesions follow the latest result
    (a later positive counts; same-day conflict → positive). Negatives are documented absences."""
    by: dict[str, list[CytoFinding]] = {}
    for f in findings or []:
        if isinstance(f, CytoFinding) and f.abnormality in ORDER:
            by.setdefault(f.abnormality, []).append(f)
    out = Cytogenetics(tested=bool(by))
    for ab in ORDER:
        fs = by.get(ab)
        if not fs:
            continue
        if ab in PRIMARY_TRANSLOCATIONS:
            positive = any(f.present for f in fs)
        else:
            dated = sorted(fs, key=lambda f: (f.date or date.min, f.present))
            positive = dated[-1].present
        (out.findings if positive else out.negatives).append(ab)
        out.sources.extend(f.source for f in fs if f.present == positive)
    out.sources = list(dict.fromkeys(out.sources))
    out.last_tested = max((f.date for fs in by.values() for f in fs if isinstance(f.date, date)), default=None)
    if "t(11;14)" in by:
        out.t11_14 = "t(11;14)" in out.findings
    if out.tested:
        out.high_risk = any(ab in HIGH_RISK for ab in out.findings)
    return out


def age_at(birth: date | None, as_of: date) -> int | None:
    if not isinstance(birth, date) or birth > as_of:
        return None
    return as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))


def latest_ecog(values: list[LabValue]) -> tuple[int | None, str | None]:
    best: LabValue | None = None
    for v in values or []:
        if not isinstance(v, LabValue):
            continue
        try:
            val = float(v.value)
        except (TypeError, ValueError):
            continue
        if not (0 <= val <= 5):
            continue
        key = v.date if isinstance(v.date, date) else date.min
        if best is None or key >= (best.date if isinstance(best.date, date) else date.min):
            best = v
    if best is None:
        return None, None
    return int(round(float(best.value))), best.source


def frailty(ecog: int | None, conditions: list[ConditionFact]) -> bool | None:
    """Frail if ECOG ≥ 2 or frailty documented; fit if ECOG 0–1 documented; unknown otherwise."""
    if any(isinstance(c, ConditionFact) and c.kind == "frailty" and c.active for c in conditions or []):
        return True
    if ecog is None:
        return None
    return ecog >= 2


def transplant_eligible(age: int | None, frail: bool | None) -> bool | None:
    """Fit and age ≤ 70 (seed 003: frontline ASCT standard for fit patients < 71 years).

    "Not frail" means no documented frailty (ECOG ≥ 2 or a frailty diagnosis): a missing ECOG does
    not make a 60-year-old ineligible (the card lists the missing ECOG). Unknown age → None.
    """
    if frail is True or (age is not None and age > ELIGIBLE_MAX_AGE):
        return False
    if age is not None:
        return True
    return None


def whole_months(a: date, b: date) -> int:
    """Completed calendar months from a to b (floor)."""
    m = (b.year - a.year) * 12 + (b.month - a.month)
    if b.day < a.day:
        m -= 1
    return max(m, 0)


def transplant_state(
    transplants: list[TransplantEvent],
    course_spans: list[tuple[date, date]],
    episode_dates: list[date],
    relapsed: bool,
    age: int | None,
    frail: bool | None,
    as_of: date,
    missing: list[str],
) -> TransplantState:
    """Prior ASCT, months to progression, maintenance after it, and the salvage-ASCT assessment.

    Decisions: an "unknown"-kind transplant in a myeloma patient is taken as autologous; months
    are measured from the last ASCT (after a tandem, the second) to the first progression after
    it. Never transplanted: "candidate" when relapsed and transplant-eligible, "not-recommended"
    when relapsed and not eligible (over 70 or frail), None when eligibility is unknown or the
    patient has not relapsed. Salvage ASCT is only assessed at relapse.
    """
    auto = [t for t in transplants or [] if isinstance(t, TransplantEvent) and t.kind in ("autologous", "unknown")]
    st = TransplantState(prior_asct=bool(auto), transplant_eligible=transplant_eligible(age, frail))
    st.sources = [t.source for t in auto]
    if not auto:
        if not relapsed:
            st.salvage_reason = "Not relapsed: salvage ASCT not assessed."
        elif st.transplant_eligible is True:
            st.salvage_asct = "candidate"
            st.salvage_reason = (
                "Never transplanted and transplant-eligible (age ≤ 70, not frail): salvage ASCT should be "
                "considered (seeds 002, 003)."
                + (" Performance status not documented: confirm fitness." if frail is None else "")
            )
        elif st.transplant_eligible is False:
            st.salvage_asct = "not-recommended"
            why = "age > 70" if age is not None and age > ELIGIBLE_MAX_AGE else "frail"
            st.salvage_reason = f"Never transplanted and not transplant-eligible ({why}; seed 003)."
        else:
            st.salvage_reason = "Never transplanted; eligibility unknown (age not documented)."
        return st
    dated = sorted(t.date for t in auto if isinstance(t.date, date))
    if not dated:
        missing.append("ASCT recorded without a date: months from ASCT to progression unknown")
        st.salvage_reason = "Prior ASCT without a date: remission duration cannot be measured."
        return st
    asct = dated[-1]
    st.asct_date = asct
    window_end = asct + timedelta(days=MAINTENANCE_AFTER_ASCT_DAYS)
    # started in the 6 months after the ASCT, or a course carried on well past it (one record
    # spanning induction and maintenance)
    started = [s for s, e in course_spans if asct < s <= window_end or (s <= asct and e >= asct + timedelta(days=60))]
    if started:
        st.maintenance_after_asct = True
    elif window_end <= as_of:
        st.maintenance_after_asct = False
    prog = next((p for p in episode_dates if p > asct), None)
    if prog is None:
        st.salvage_reason = f"ASCT on {asct.isoformat()}; no progression after it: salvage ASCT not assessed."
        return st
    months = whole_months(asct, prog)
    st.months_asct_to_progression = months
    t003 = SEED_003_NO_MAINT_MONTHS if st.maintenance_after_asct is False else SEED_003_MONTHS
    st.threshold_003_months = t003
    maint_txt = {True: "with maintenance", False: "without maintenance", None: "maintenance unknown"}[
        st.maintenance_after_asct
    ]
    head = (
        f"{months} months from ASCT ({asct.isoformat()}) to progression ({prog.isoformat()}), {maint_txt}. "
        f"Seed 002: ≥ {SEED_002_MONTHS} months; seed 003 [2A]: ≥ {t003} months"
        + (" (24 without maintenance)" if t003 == SEED_003_MONTHS else "")
        + ". "
    )
    if months < SEED_002_MONTHS:
        st.salvage_asct = "not-recommended"
        st.salvage_reason = head + "Below both thresholds: do not offer (median OS 6 months, seed 002)."
    elif months >= t003:
        st.salvage_asct = "candidate"
        st.salvage_reason = head + "Meets both thresholds: candidate for salvage ASCT."
    else:
        st.salvage_asct = "discuss"
        st.salvage_reason = head + "Meets seed 002 but not seed 003: discuss."
    if st.maintenance_after_asct is None:
        st.salvage_reason += " Maintenance after ASCT not determinable; the 36-month threshold was used."
    return st
