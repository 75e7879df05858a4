"""Cytogenetic risk, age / frailty and transplant state (prior ASCT, salvage ASCT assessment).

Sources: IMS/IMWG 2025 high-risk definition (Avet-Loiseau H et al., J Clin Oncol 2025;43(24):2739-51,
doi:10.1200/JCO-24-01893, beyond the seeds; it supersedes seed 002's list, in which t(4;14) and 1q
alone were high risk), seed 002 (salvage ASCT if PFS after the first ASCT ≥ 18 months, never if
< 18 months), seed 003 (salvage ASCT not below 36 months of remission, 24 without maintenance [2A];
frontline ASCT standard for fit patients < 71 years), CLINICAL_LOGIC §1-2.
"""

from __future__ import annotations

from datetime import date, timedelta

from cds_service.clinical.model import Cytogenetics, TransplantState
from cds_service.record.model import ConditionFact, CytoFinding, LabValue, TransplantEvent

PRIMARY_TRANSLOCATIONS = ("t(4;14)", "t(14;16)", "t(14;20)", "t(11;14)")
ACQUIRED = ("del(17p)", "1q-gain", "del(1p)", "TP53-mutation")
ORDER = ("del(17p)", "t(4;14)", "t(14;16)", "t(14;20)", "1q-gain", "del(1p)", "t(11;14)")
RISK_DEFINITION = "IMS-IMWG-2025"
# IMS/IMWG 2025 (Avet-Loiseau, JCO 2025): del(17p) counts from 20 % of clonal plasma cells; the
# IgH translocations only with 1q gain/amplification and/or del(1p32); del(1p32) biallelic, or
# monoallelic with 1q gain; β2-microglobulin ≥ 5.5 mg/L with normal creatinine (< 1.2 mg/dL).
DEL17P_MIN_PERCENT = 20.0
HR_TRANSLOCATIONS = ("t(4;14)", "t(14;16)", "t(14;20)")
B2M_MIN_MG_L = 5.5
CREATININE_NORMAL_BELOW_MG_DL = 1.2
CREATININE_WINDOW_DAYS = 30  # a creatinine this close to the β2-microglobulin judges its renal function
_NAMES = {"1q-gain": "1q gain", "del(1p)": "del(1p32)"}

SEED_002_MONTHS = 18
SEED_003_MONTHS = 36
SEED_003_NO_MAINT_MONTHS = 24
MAINTENANCE_AFTER_ASCT_DAYS = 183
ELIGIBLE_MAX_AGE = 70
# CLINICAL_LOGIC §5 fitness: salvage ASCT is not recommended at ECOG ≥ 3 or over 75
SALVAGE_MAX_ECOG = 2
SALVAGE_MAX_AGE = 75


def _fmt(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _b2m_criterion(b2m: list[LabValue], creatinine: list[LabValue], as_of: date | None,
                   out: Cytogenetics) -> None:
    """β2-microglobulin ≥ 5.5 mg/L with a creatinine < 1.2 mg/dL within 30 days (the latest β2M)."""
    vals = [v for v in b2m or [] if isinstance(v, LabValue) and isinstance(v.date, date)
            and isinstance(v.value, int | float) and (as_of is None or v.date <= as_of)]
    if not vals:
        return
    last = max(vals, key=lambda v: v.date)
    if last.value < B2M_MIN_MG_L:
        return
    near = [c for c in creatinine or [] if isinstance(c, LabValue) and isinstance(c.date, date)
            and isinstance(c.value, int | float) and abs((c.date - last.date).days) <= CREATININE_WINDOW_DAYS]
    crea = min(near, key=lambda c: abs((c.date - last.date).days)) if near else None
    b2 = f"β2-microglobulin {_fmt(last.value)} mg/L ({last.date.isoformat()})"
    if crea is None:
        out.risk_notes.append(f"{b2} ≥ 5.5 but no creatinine within {CREATININE_WINDOW_DAYS} days: renal "
                              "function unknown, not counted as high risk")
    elif crea.value >= CREATININE_NORMAL_BELOW_MG_DL:
        out.risk_notes.append(f"{b2} ≥ 5.5 with creatinine {_fmt(crea.value)} mg/dL (≥ 1.2): may reflect renal "
                              "impairment, not counted as high risk")
    else:
        out.high_risk_reasons.append(f"{b2} with creatinine {_fmt(crea.value)} mg/dL")
        out.sources.extend([last.source, crea.source])


def cytogenetics(findings: list[CytoFinding], b2m: list[LabValue] | None = None,
                 creatinine: list[LabValue] | None = None, as_of: date | None = None) -> Cytogenetics:
    """FISH state and the IMS/IMWG 2025 high-risk assessment.

    Primary translocations stand once positive; acquired lesions (del(17p), 1q gain, del(1p32),
    TP53 mutation) follow the latest result (a later positive counts; same-day conflict → positive).
    Negatives are documented absences. The del(17p) clone size is the one of the latest positive
    result that reports it; without one, del(17p) counts as high risk and the card says the size
    was not reported. `high_risk` is None when no FISH is on record and β2-microglobulin does not
    meet the definition on its own."""
    by: dict[str, list[CytoFinding]] = {}
    for f in findings or []:
        if isinstance(f, CytoFinding) and (f.abnormality in ORDER or f.abnormality == "TP53-mutation"):
            by.setdefault(f.abnormality, []).append(f)
    out = Cytogenetics(tested=any(ab in by for ab in ORDER), risk_definition=RISK_DEFINITION)
    positive: dict[str, list[CytoFinding]] = {}
    for ab in (*ORDER, "TP53-mutation"):
        fs = by.get(ab)
        if not fs:
            continue
        if ab in PRIMARY_TRANSLOCATIONS:
            pos = any(f.present for f in fs)
        else:
            dated = sorted(fs, key=lambda f: (f.date or date.min, f.present))
            pos = dated[-1].present
        if ab == "TP53-mutation":
            out.tp53_mutation = pos
        else:
            (out.findings if pos else out.negatives).append(ab)
        out.sources.extend(f.source for f in fs if f.present == pos)
        if pos:
            positive[ab] = sorted((f for f in fs if f.present), key=lambda f: f.date or date.min)
    out.last_tested = max((f.date for fs in by.values() for f in fs if isinstance(f.date, date)), default=None)
    if "t(11;14)" in by:
        out.t11_14 = "t(11;14)" in out.findings
    _high_risk(out, positive, by)
    _b2m_criterion(b2m or [], creatinine or [], as_of, out)
    out.sources = list(dict.fromkeys(out.sources))
    if out.high_risk_reasons:
        out.high_risk = True
    elif out.tested:
        out.high_risk = False
    return out


def _high_risk(out: Cytogenetics, positive: dict[str, list[CytoFinding]], by: dict[str, list[CytoFinding]]) -> None:
    """The FISH / mutation criteria of IMS/IMWG 2025, with the words for the card."""
    reasons, notes = out.high_risk_reasons, out.risk_notes
    found = set(out.findings)
    if "del(17p)" in positive:
        sized = [f for f in positive["del(17p)"] if f.clonal_fraction is not None]
        if sized:
            out.del17p_fraction = round(float(sized[-1].clonal_fraction) * 100.0, 1)  # type: ignore[arg-type]
        pct = out.del17p_fraction
        if pct is None:
            reasons.append("del(17p), clone size not reported")
            notes.append("del(17p) clone size not reported: counted as high risk (the definition needs ≥ 20 % of "
                         "clonal plasma cells); ask the lab for the percentage")
        elif pct >= DEL17P_MIN_PERCENT:
            reasons.append(f"del(17p) in {_fmt(pct)} % of plasma cells")
        else:
            notes.append(f"del(17p) in {_fmt(pct)} % of plasma cells: below 20 %, not high risk by itself")
    if out.tp53_mutation:
        reasons.append("TP53 mutation")
    chr1 = [_NAMES[a] for a in ("1q-gain", "del(1p)") if a in found]
    trans = [t for t in HR_TRANSLOCATIONS if t in found]
    if trans and chr1:
        reasons.append(f"{' and '.join(trans)} with {' and '.join(chr1)}")
    elif trans:
        unknown = [_NAMES[a] for a in ("1q-gain", "del(1p)") if a not in by]
        tail = (f"; {' and '.join(unknown)} not reported: high risk if present" if unknown else "")
        notes.append(f"{' and '.join(trans)} without 1q gain or del(1p32): not high risk by IMS/IMWG 2025{tail}")
    if "del(1p)" in found:
        allelic = {f.allelic for f in positive.get("del(1p)", [])}
        if "bi" in allelic:
            reasons.append("biallelic del(1p32)")
        elif "1q-gain" in found:
            if not trans:
                reasons.append("del(1p32) with 1q gain")
        elif "mono" in allelic:
            notes.append("monoallelic del(1p32) without 1q gain: not high risk by itself")
        else:
            notes.append("del(1p32) without 1q gain, mono- or biallelic not reported: high risk only if biallelic; "
                         "ask the lab")
    if "1q-gain" in found and not trans and "del(1p)" not in found:
        notes.append("1q gain alone: not high risk by IMS/IMWG 2025 (only with an IgH translocation or del(1p32))")
    if out.tested and "del(17p)" not in by:
        notes.append("del(17p) not reported")


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
    ecog: int | None = None,
    lines_before_relapse: int | None = None,
) -> TransplantState:
    """Prior ASCT, months to progression, maintenance after it, and the salvage-ASCT assessment.

    Decisions: an "unknown"-kind transplant in a myeloma patient is taken as autologous; months
    are measured from the last ASCT (after a tandem, the second) to the first progression after
    it. Salvage ASCT is only assessed at relapse, and is an early-relapse option (seeds 002/003:
    first relapse): "not-recommended" after ≥ 2 lines before the relapse, and at ECOG ≥ 3 or age
    > 75 whatever the remission (CLINICAL_LOGIC §5). Never transplanted: "candidate" at first
    relapse when transplant-eligible (age ≤ 70, not frail), "not-recommended" when not eligible,
    None when eligibility is unknown. Months from ASCT to progression are reported in every case.
    """
    auto = [t for t in transplants or [] if isinstance(t, TransplantEvent) and t.kind in ("autologous", "unknown")]
    st = TransplantState(prior_asct=bool(auto), transplant_eligible=transplant_eligible(age, frail))
    st.sources = [t.source for t in auto]
    _assess(st, auto, course_spans, episode_dates, relapsed, age, frail, as_of, missing)
    if relapsed:
        _fitness_and_timing(st, age, ecog, lines_before_relapse)
    return st


def _fitness_and_timing(st: TransplantState, age: int | None, ecog: int | None, lines_before: int | None) -> None:
    """Override the remission-based verdict where fitness or the point of the disease course rule it out."""
    unfit = []
    if ecog is not None and ecog > SALVAGE_MAX_ECOG:
        unfit.append(f"ECOG {ecog}")
    if age is not None and age > SALVAGE_MAX_AGE:
        unfit.append(f"age {age}")
    if unfit:
        st.salvage_asct = "not-recommended"
        st.salvage_why = "not fit for high-dose therapy (" + ", ".join(unfit) + ")"
        st.salvage_reason = (f"Not fit for high-dose therapy ({', '.join(unfit)}; ECOG ≥ 3 or age > 75 rules out "
                             f"salvage ASCT). " + st.salvage_reason).strip()
        return
    if lines_before is not None and lines_before >= 2 and st.salvage_asct in ("candidate", "discuss", None):
        st.salvage_asct = "not-recommended"
        st.salvage_why = f"relapse after {lines_before} lines (an option at first relapse)"
        st.salvage_reason = (f"Relapse after {lines_before} lines: salvage ASCT is an option at first relapse "
                             f"(seeds 002, 003), not later. " + st.salvage_reason).strip()


def _assess(
    st: TransplantState,
    auto: list[TransplantEvent],
    course_spans: list[tuple[date, date]],
    episode_dates: list[date],
    relapsed: bool,
    age: int | None,
    frail: bool | None,
    as_of: date,
    missing: list[str],
) -> None:
    """The remission-based verdict (seed 002 ≥ 18 months, seed 003 ≥ 36 / 24 months) or eligibility."""
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
        return
    dated = sorted(t.date for t in auto if isinstance(t.date, date))
    if not dated:
        missing.append("ASCT recorded without a date: months from ASCT to progression unknown")
        st.salvage_reason = "Prior ASCT without a date: remission duration cannot be measured."
        return
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
        return
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
