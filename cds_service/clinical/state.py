"""PatientRecord → ClinicalState: the one entry point of the clinical core.

Pure: no I/O, no clock (as_of is given), never raises on odd records — a record that defeats
the derivation yields `insufficient_data` with the reason in `missing`, never a 500.
The rules live in lines.py (IMWG lines), progression.py (progression episodes, IMWG PD from
M-protein), refractory.py (60-day rule, classes) and risk.py (FISH, frailty, transplant).

State-level decisions:
- `relapsed`: a progression episode more than 21 days after the first line started (earlier ones
  belong to the diagnosis); `last_progression` is the latest such episode.
- `on_first_line`: exactly one line and not relapsed (ongoing or finished) → "not-relapsed".
- `insufficient_data`: myeloma but no dated anti-myeloma agent (lines cannot be built).
- `last_response_months`: the latest line that ended in progression, from its start (or its
  ASCT) to that progression, in months of 30.44 days; `short_response` when < 18 (seed 002).
- `frontline_anti_cd38`: line 1 with an anti-CD38 and lenalidomide → "with-lenalidomide";
  with bortezomib and an alkylator (not ASCT conditioning) → "with-bortezomib-alkylator";
  any other anti-CD38 regimen → "other"; None without anti-CD38 in line 1.
- PCL / extramedullary / neuropathy: an active Condition of that kind.
- Broad cytotoxics ending > 1 year before the earliest myeloma onset are another disease's
  treatment; progression events dated after as_of are ignored.
- Courses without a usable start date never shape lines (lines.place_unanchored); those left
  unplaced, and records without any date, make `line_count_uncertain`.
- `on_therapy`: the last line is running and no progression came more than 21 days after it
  started (the progression that led to it is older) → `current_line`. A finished last line
  ("completed", or a CAR-T given) with no progression since → `off_therapy_no_progression`.
- Targets and T-cell redirecting history: refractory.tcr_history / target_states.
"""

from __future__ import annotations

from datetime import date, timedelta

from cds_service.clinical.courses import Course, build_courses
from cds_service.clinical.lines import (
    MIN_ON_TREATMENT_DAYS,
    finalize_lines,
    place_unanchored,
    segment_lines,
)
from cds_service.clinical.model import ClinicalState, TherapyLine
from cds_service.clinical.progression import all_progression_events, episodes, flc_gaps, flc_unjudged
from cds_service.clinical.refractory import (
    agent_evidence,
    class_states,
    len_recent_exposure,
    penta_refractory,
    progressed_on_len_maintenance,
    target_states,
    tcr_history,
)
from cds_service.clinical.risk import age_at, cytogenetics, frailty, latest_ecog, transplant_state
from cds_service.record.model import ConditionFact, PatientRecord

SHORT_RESPONSE_MONTHS = 18  # seed 002: responses < 18 months indicate high-risk disease
DAYS_PER_MONTH = 30.4375
ALKYLATORS = frozenset({"melphalan", "cyclophosphamide", "bendamustine"})
# cytotoxics used for many other diseases; given long before the myeloma diagnosis they treated
# something else (CLINICAL_LOGIC §1 counts lines of myeloma therapy only)
NON_SPECIFIC_CHEMO = frozenset({"doxorubicin", "cyclophosphamide", "cisplatin", "etoposide", "bendamustine",
                                "melphalan"})
MYELOMA_KINDS = frozenset({"multiple-myeloma", "plasma-cell-leukemia", "extramedullary"})
PRE_DIAGNOSIS_DAYS = 365


def derive_state(record: PatientRecord, as_of: date) -> ClinicalState:
    """Derive the clinical state at `as_of`; see the module docstrings for every rule."""
    try:
        mm = bool(record.has_myeloma)
    except Exception:  # noqa: BLE001 - odd records must never crash the service
        mm = False
    if not mm:
        return ClinicalState(multiple_myeloma=False, as_of=as_of)
    try:
        return _derive(record, as_of)
    except Exception as exc:  # noqa: BLE001 - last-resort guard; the reason is shown, not raised
        return ClinicalState(
            multiple_myeloma=True,
            insufficient_data=True,
            as_of=as_of,
            missing=[f"the treatment history could not be derived from this record ({type(exc).__name__})"],
        )


def frontline_anti_cd38_type(first: TherapyLine | None) -> str | None:
    """D-Rd-like ("with-lenalidomide"), D-VMP-like ("with-bortezomib-alkylator") or "other" (seed 003)."""
    if first is None:
        return None
    agents = set(first.agents)
    if not agents & {"daratumumab", "isatuximab"}:
        return None
    if "lenalidomide" in agents:
        return "with-lenalidomide"
    if "bortezomib" in agents and agents & ALKYLATORS:
        return "with-bortezomib-alkylator"
    return "other"


def _drop_pre_diagnosis_chemo(courses: list[Course], conditions: list[ConditionFact],
                              missing: list[str]) -> list[Course]:
    """Broad cytotoxics (doxorubicin, cyclophosphamide...) that ended more than a year before the
    myeloma diagnosis treated something else (e.g. AC for breast cancer): not a myeloma line.

    Only non-myeloma-specific agents are dropped: an IMiD / PI / anti-CD38 dated before the charted
    onset more likely means the onset date is late (problem list entered after transfer of care).
    """
    onsets = [c.onset for c in conditions if c.kind in MYELOMA_KINDS and isinstance(c.onset, date)]
    if not onsets:
        return courses
    cutoff = min(onsets) - timedelta(days=PRE_DIAGNOSIS_DAYS)
    keep = [c for c in courses if not (c.agent in NON_SPECIFIC_CHEMO and c.end < cutoff)]
    for c in courses:
        if c not in keep:
            missing.append(f"{c.agent} {c.start.isoformat()}–{c.end.isoformat()} predates the myeloma diagnosis "
                           f"by over a year: not counted as myeloma therapy")
    return keep


def _derive(record: PatientRecord, as_of: date) -> ClinicalState:
    st = ClinicalState(multiple_myeloma=True, as_of=as_of)
    missing: list[str] = []
    conditions = [c for c in (record.conditions or []) if isinstance(c, ConditionFact)]

    courses, steroids, undated = build_courses(record.medications or [], as_of)
    courses = _drop_pre_diagnosis_chemo(courses, conditions, missing)
    anchored = [c for c in courses if c.anchored]
    # progression episodes (charted + computed), one date per episode; an event dated after as_of
    # has not happened yet at the time of the assessment (a mis-dated or future entry)
    events = [e for e in all_progression_events(record, [c.start for c in anchored]) if e.date <= as_of]
    eps = episodes(events)
    episode_dates = [e[0].date for e in eps]
    st.progression_events = events

    raw = segment_lines(anchored, record.transplants or [], episode_dates,
                        getattr(record, "car_t_collections", None) or [])
    unplaced = place_unanchored(raw, [c for c in courses if not c.anchored])
    lines = finalize_lines(raw, steroids, episode_dates, as_of) if anchored or raw else []
    # a line made only of an ASCT (no drugs recorded) still counts; drugs are what define it
    st.lines = lines
    _undated_notes(st, courses, unplaced, undated, missing)
    if not anchored:
        st.insufficient_data = True
        missing.append(
            "no dated anti-myeloma therapy in the record: lines of therapy cannot be built"
            if not undated
            else "anti-myeloma therapy recorded without usable dates: lines of therapy cannot be built"
        )

    st.agents = agent_evidence(courses, undated, episode_dates, as_of, missing, record.m_protein or [])
    st.classes = class_states(st.agents)
    cls = st.classes
    st.double_refractory = cls["IMiD"] == "refractory" and cls["PI"] == "refractory"
    st.triple_class_exposed = all(v != "naive" for v in cls.values())
    st.triple_class_refractory = all(v == "refractory" for v in cls.values())
    st.penta_refractory = penta_refractory(st.agents)

    first_start = lines[0].start if lines and lines[0].start else None
    after_first = (
        [p for p in episode_dates if p > first_start + timedelta(days=MIN_ON_TREATMENT_DAYS)] if first_start else []
    )
    # a drug stopped for progression / no response is a relapse even when no date can be trusted
    st.relapsed = bool(after_first) or (bool(lines) and any(c.stop_reason == "progression" for c in courses))
    st.last_progression = after_first[-1] if after_first else None
    st.on_first_line = len(lines) == 1 and not st.relapsed and not st.insufficient_data
    _current_line(st, courses, episode_dates)
    st.tcr_history = tcr_history(courses, episode_dates)
    st.targets = target_states(st.tcr_history)
    if any(h.target == "unknown" for h in st.tcr_history):
        missing.append("a CAR-T infusion is recorded without its product or target: BCMA / GPRC5D status may be "
                       "incomplete")
    st.progressed_on_len_maintenance = progressed_on_len_maintenance(courses, episode_dates, missing)
    st.len_recent_exposure = len_recent_exposure(st.agents, courses, st.last_progression)

    ended = [ln for ln in lines if ln.progression_date is not None]
    if ended:
        last = ended[-1]
        start = last.asct_date if last.includes_asct and last.asct_date else last.start
        if start is not None and last.progression_date is not None and last.progression_date >= start:
            months = (last.progression_date - start).days / DAYS_PER_MONTH
            st.last_response_months = round(months, 1)
            st.short_response = months < SHORT_RESPONSE_MONTHS
    st.frontline_anti_cd38 = frontline_anti_cd38_type(lines[0] if lines else None)  # type: ignore[assignment]

    st.cytogenetics = cytogenetics(record.cytogenetics or [], record.b2m, record.creatinine, as_of)
    if not st.cytogenetics.tested:
        missing.append("no FISH cytogenetics in the record (risk unknown, not standard)")

    st.age = age_at(record.birth_date, as_of)
    if st.age is None:
        missing.append("birth date unknown: age not known")
    st.over_75 = None if st.age is None else st.age > 75
    st.ecog, _ = latest_ecog(record.ecog or [])
    st.frail = frailty(st.ecog, conditions)
    if st.ecog is None:
        missing.append("no ECOG performance status documented")
    active = {c.kind for c in conditions if c.active}
    st.plasma_cell_leukemia = "plasma-cell-leukemia" in active
    st.extramedullary = "extramedullary" in active
    st.neuropathy = "neuropathy" in active

    st.transplant = transplant_state(
        record.transplants or [],
        [(c.start, c.end) for c in courses if not c.conditioning],
        episode_dates,
        st.relapsed,
        st.age,
        st.frail,
        as_of,
        missing,
        ecog=st.ecog,
        lines_before_relapse=_lines_before_relapse(st),
    )
    missing.extend(flc_gaps(record, as_of))
    st.flc_unjudged = flc_unjudged(record, as_of)
    if st.relapsed and not record.m_protein:
        missing.append("no serum M-protein values: IMWG progression could not be checked from labs")
    missing.extend(f"data: {n}" for n in (record.notes or []) if isinstance(n, str))
    st.missing = list(dict.fromkeys(missing))
    return st


def _lines_before_relapse(st: ClinicalState) -> int:
    """Lines begun before the latest progression (the relapse being treated): 1 = first relapse."""
    if st.last_progression is None:
        return st.prior_lines
    cut = st.last_progression - timedelta(days=MIN_ON_TREATMENT_DAYS)
    return sum(1 for ln in st.lines if ln.start is not None and ln.start < cut)


def _current_line(st: ClinicalState, courses: list[Course], episode_dates: list[date]) -> None:
    """On therapy (last line running, no progression since it began) or off therapy without progression."""
    if not st.lines or st.insufficient_data:
        return
    last = st.lines[-1]
    if last.start is None:
        return
    since = last.start + timedelta(days=MIN_ON_TREATMENT_DAYS)
    progressed = any(p > since for p in episode_dates) or any(
        # a course still running was not stopped for progression (a merged earlier record may say so)
        c.stop_reason == "progression" and not c.ongoing and last.number in c.lines and c.end > since
        for c in courses
    )
    if progressed:
        return
    if last.ongoing:
        st.on_therapy = True
        st.current_line = last.number
    elif last.ended_by == "completed":
        st.off_therapy_no_progression = True


def _undated_notes(st: ClinicalState, courses: list[Course], unplaced: list[Course], undated: list[str],
                   missing: list[str]) -> None:
    """Say where records without a usable start went; unplaced ones make the line count uncertain."""
    unplaced_ids = {id(c) for c in unplaced}
    for c in courses:
        if c.anchored or id(c) in unplaced_ids:
            continue
        day = c.end if c.date_basis == "end date" else c.start
        missing.append(f"{c.agent} ({', '.join(c.sources[:2])}): no usable start date; placed in line "
                       f"{', '.join(map(str, c.lines))} by its {c.date_basis} {day.isoformat()}")
    for c in unplaced:
        day = c.end if c.date_basis == "end date" else c.start
        st.undated_records.append(f"{c.agent} ({', '.join(c.sources[:2])}; {c.date_basis} {day.isoformat()})")
        missing.append(f"{c.agent} ({', '.join(c.sources[:2])}): no usable start date and its {c.date_basis} "
                       f"{day.isoformat()} falls in no line: listed as undated; the line count may be off")
    st.undated_records.extend(f"{a} (no date)" for a in undated)
    st.line_count_uncertain = bool(unplaced or undated)
