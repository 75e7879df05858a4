"""Exposed / refractory per agent and per class, with the evidence a clinician can check.

Sources: Rajkumar SV et al. Blood 2011;117(18):4691 (refractory = progression on therapy or
within 60 days of the last dose; nonresponsive = < MR); Gandhi UH et al. Leukemia 2019
(penta-refractory); CLINICAL_LOGIC §1; seeds 002 and 003 (lenalidomide maintenance, 6-month
window).

Operational decisions:
- A progression episode counts against a course when it falls more than 21 days after the course
  started (earlier it is the progression that led to the start) and no later than 60 days after
  the last dose (or any time while the course is ongoing) — whatever the stop reason.
- A course stopped with reason "progression" (no response / progression on it) is refractory
  even when no separate progression date was charted.
- A finished course of >= 8 weeks whose serum M-protein never fell by 25 % from a measurable
  baseline (< minimal response, IMWG "nonresponsive") is refractory (course_nonresponse).
- Without a progression date nothing is refractory: the agent stays "exposed" and, when the chart
  suggests an undated progression (stop without reason followed by new therapy), the missing
  evidence is listed in `state.missing`.
"""

from __future__ import annotations

from datetime import date, timedelta

from cds_service.clinical.courses import Course
from cds_service.clinical.lines import MIN_ON_TREATMENT_DAYS
from cds_service.clinical.model import (
    CAR_T_AGENTS,
    CLASS_AGENTS,
    TARGETS,
    TCR_AGENTS,
    UNSPECIFIED_AGENTS,
    AgentEvidence,
    ClassStatus,
    TargetStatus,
    TcrTherapy,
)
from cds_service.clinical.progression import _to_g_dl
from cds_service.record.model import LabValue

REFRACTORY_DAYS = 60
MEASURABLE_G_DL = 1.0  # IMWG measurable serum M-protein
MR_REDUCTION = 0.25  # minimal response = >= 25 % reduction of serum M-protein
NONRESPONSE_MIN_DAYS = 56  # at least two cycles before nonresponse is judged
LEN_WINDOW_DAYS = 183  # "6 months" of seed 003


def _d(x: date | None) -> str:
    return x.isoformat() if x else "unknown date"


def _lines_txt(c: Course) -> str:
    return "line " + ", ".join(str(n) for n in c.lines) if c.lines else "no line"


def course_progression(c: Course, episode_dates: list[date]) -> date | None:
    """The first progression while on the course or ≤ 60 days after its last dose.

    A CAR-T infusion is one-time: the first progression at any time after it (CLINICAL_LOGIC §5).
    """
    one_time = c.agent in CAR_T_AGENTS
    for p in episode_dates:
        if p <= c.start + timedelta(days=MIN_ON_TREATMENT_DAYS):
            continue
        if one_time or c.ongoing or p <= c.end + timedelta(days=REFRACTORY_DAYS):
            return p
    return None


def _months(a: date, b: date) -> int:
    return max(0, round((b - a).days / 30.4375))


def _car_t_reason(c: Course, p: date | None) -> str:
    name = "CAR-T (product not recorded)" if c.agent in UNSPECIFIED_AGENTS else c.agent
    target = TCR_AGENTS.get(c.agent, ("CAR-T", None))[1]
    if p is None:
        return f"{name} infused {_d(c.end)} ({_lines_txt(c)}); no progression documented since"
    failed = f"failure of this CAR-T and of its target {target}" if target else "failure of this CAR-T"
    return (f"progression on {_d(p)}, {_months(c.end, p)} months after the {name} infusion on {_d(c.end)} "
            f"({_lines_txt(c)}): {failed} (a CAR-T is given once; any progression after it counts)")


def course_nonresponse(c: Course, m_protein: list[LabValue] | None) -> str | None:
    """Failure to reach minimal response on a finished course (IMWG nonresponsive = < MR), from serum
    M-protein: measurable baseline (>= 1 g/dL, latest value from 60 days before to 7 days after the
    start), >= 2 values on treatment (from day 28 to 14 days after the last dose) over a course of
    >= 8 weeks, and the best of them still above 75 % of baseline. Ongoing courses and maintenance
    are not judged (a response may still come / maintenance holds a response); without measurable
    M-protein nothing is inferred."""
    if (
        not m_protein
        or c.ongoing
        or c.conditioning
        or c.maintenance_from is not None  # maintenance keeps a response; it is not expected to deepen it
        or (c.end - c.start).days < NONRESPONSE_MIN_DAYS
    ):
        return None
    vals: list[tuple[date, float]] = []
    for v in m_protein:
        if isinstance(v, LabValue) and isinstance(v.date, date):
            g = _to_g_dl(v)
            if g is not None:
                vals.append((v.date, g))
    vals.sort()
    base = [(d, g) for d, g in vals if c.start - timedelta(days=60) <= d <= c.start + timedelta(days=7)]
    on = [g for d, g in vals if c.start + timedelta(days=28) <= d <= c.end + timedelta(days=14)]
    if not base or len(on) < 2 or base[-1][1] < MEASURABLE_G_DL:
        return None
    b0, best = base[-1][1], min(on)
    if best > (1 - MR_REDUCTION) * b0:
        return (f"no minimal response on {c.agent} ({_lines_txt(c)}): serum M-protein {b0:g} g/dL at start, "
                f"best {best:g} g/dL on treatment ({round(100 * (b0 - best) / b0)} % reduction < 25 %)")
    return None


def agent_evidence(
    courses: list[Course],
    undated_agents: list[str],
    episode_dates: list[date],
    as_of: date,
    missing: list[str],
    m_protein: list[LabValue] | None = None,
) -> dict[str, AgentEvidence]:
    """One AgentEvidence per received agent (steroids excluded)."""
    by_agent: dict[str, list[Course]] = {}
    for c in courses:
        by_agent.setdefault(c.agent, []).append(c)
    out: dict[str, AgentEvidence] = {}
    all_starts = sorted((c.start, c.agent) for c in courses)
    for agent, cs in by_agent.items():
        cs.sort(key=lambda c: c.start)
        refractory: tuple[Course, date | None, str] | None = None
        for c in cs:
            p = course_progression(c, episode_dates)
            if p is not None and c.agent in CAR_T_AGENTS:
                refractory = (c, p, _car_t_reason(c, p))
            elif p is not None:
                if c.ongoing or p <= c.end:
                    why = f"progression on {_d(p)} while on {agent} ({_lines_txt(c)}, since {_d(c.start)})"
                else:
                    why = (
                        f"progression on {_d(p)}, {(p - c.end).days} days after the last dose of {agent} "
                        f"on {_d(c.end)} ({_lines_txt(c)}; ≤ 60 days)"
                    )
                if c.stop_reason == "progression":
                    txt = f" ({c.stop_reason_text})" if c.stop_reason_text else ""
                    why += f"; {agent} stopped on {_d(c.end)} for progression / no response{txt}"
                if c.stop_reason == "toxicity":
                    why += "; the stop for toxicity does not change this (IMWG 60-day rule)"
                refractory = (c, p, why)
            elif c.stop_reason == "progression":
                txt = f" ({c.stop_reason_text})" if c.stop_reason_text else ""
                refractory = (
                    c,
                    c.end if c.end_known else None,
                    f"{agent} stopped on {_d(c.end)} for progression / no response{txt} ({_lines_txt(c)})",
                )
            elif (nr := course_nonresponse(c, m_protein)) is not None:
                refractory = (c, None, nr)
        last = cs[-1]
        ongoing = any(c.ongoing for c in cs)
        lines = sorted({n for c in cs for n in c.lines})
        sources = list(dict.fromkeys(s for c in cs for s in c.sources))
        first = cs[0].start
        last_dose = None if ongoing else max(c.end for c in cs)
        if refractory is not None:
            c, p, why = refractory
            out[agent] = AgentEvidence(agent, "refractory", lines, first, last_dose, ongoing, p, why, sources)
            continue
        # exposed: say why, and what is missing when the chart hints at an undated progression
        if agent in CAR_T_AGENTS:
            why = _car_t_reason(last, None)
        elif last.ongoing:
            why = f"{agent} ongoing since {_d(last.start)} ({_lines_txt(last)}); no progression documented on it"
        else:
            later = [p for p in episode_dates if p > last.end]
            reason = {
                "toxicity": "stopped for toxicity",
                "completed": "course completed",
                "other": "stopped (other reason)",
                "unknown": "stopped (reason not documented)",
            }.get(last.stop_reason, "stopped")
            if later:
                gap = (later[0] - last.end).days
                why = (
                    f"{agent} {reason}, last dose {_d(last.end)} ({_lines_txt(last)}); next progression "
                    f"{_d(later[0])} was {gap} days later (> 60 days)"
                )
            else:
                why = (
                    f"{agent} {reason}, last dose {_d(last.end)} ({_lines_txt(last)}); no progression documented since"
                )
                nxt = next((s for s, a in all_starts if a != agent and last.end - timedelta(days=7) <= s), None)
                if (
                    last.stop_reason in ("unknown", "other")
                    and nxt is not None
                    and (nxt - last.end).days <= REFRACTORY_DAYS
                ):
                    missing.append(
                        f"{agent}: stopped {_d(last.end)} without a documented reason and new therapy began "
                        f"{_d(nxt)}; no progression date recorded, so counted as exposed, not refractory"
                    )
            if not last.end_known:
                missing.append(f"{agent}: end date not recorded (last known date {_d(last.end)} used as the last dose)")
        out[agent] = AgentEvidence(agent, "exposed", lines, first, last_dose, ongoing, None, why, sources)
    for agent in undated_agents:
        if agent not in out:
            out[agent] = AgentEvidence(
                agent, "exposed", [], None, None, False, None, f"{agent} recorded without any date", []
            )
            missing.append(f"{agent}: recorded without dates; cannot be placed in a line or judged refractory")
    return out


def class_states(agents: dict[str, AgentEvidence]) -> dict[str, ClassStatus]:
    """IMiD / PI / anti-CD38 always present; refractory if any agent of the class is."""
    out: dict[str, ClassStatus] = {}
    for cls, members in CLASS_AGENTS.items():
        statuses = [agents[a].status for a in members if a in agents]
        out[cls] = "refractory" if "refractory" in statuses else ("exposed" if statuses else "naive")
    return out


def penta_refractory(agents: dict[str, AgentEvidence]) -> bool:
    """Lenalidomide, pomalidomide, bortezomib, carfilzomib and an anti-CD38 all refractory."""

    def r(a: str) -> bool:
        return a in agents and agents[a].status == "refractory"

    return all(r(a) for a in ("lenalidomide", "pomalidomide", "bortezomib", "carfilzomib")) and (
        r("daratumumab") or r("isatuximab")
    )


def len_recent_exposure(agents: dict[str, AgentEvidence], courses: list[Course], last_progression: date | None) -> bool:
    """Lenalidomide stopped 60 days–6 months before the last progression (exposed by IMWG, but seed
    003 advises lenalidomide-based therapy only > 6 months after stopping)."""
    ev = agents.get("lenalidomide")
    if ev is None or ev.status == "refractory" or last_progression is None:
        return False
    for c in courses:
        if c.agent == "lenalidomide" and not c.ongoing:
            gap = (last_progression - c.end).days
            if REFRACTORY_DAYS < gap <= LEN_WINDOW_DAYS:
                return True
    return False


def progressed_on_len_maintenance(courses: list[Course], episode_dates: list[date], missing: list[str]) -> bool | None:
    """Progression while on (or ≤ 60 days after) lenalidomide given as maintenance.

    False when lenalidomide was never maintenance or maintenance went on without progression;
    None only when a maintenance course stopped without a reason, new therapy followed within
    60 days and no progression date exists (the data cannot tell).
    """
    maint = [c for c in courses if c.agent == "lenalidomide" and c.maintenance_from is not None]
    if not maint:
        return False
    unknown = False
    for c in maint:
        if c.stop_reason == "progression":
            return True
        for p in episode_dates:
            if p > max(c.maintenance_from or c.start, c.start + timedelta(days=MIN_ON_TREATMENT_DAYS)) and (
                c.ongoing or p <= c.end + timedelta(days=REFRACTORY_DAYS)
            ):
                return True
        if not c.ongoing and c.stop_reason in ("unknown", "other"):
            later = [o.start for o in courses if o.agent != "lenalidomide" and c.end - timedelta(days=7) <= o.start]
            if later and (min(later) - c.end).days <= REFRACTORY_DAYS and not any(p > c.end for p in episode_dates):
                unknown = True
    if unknown:
        missing.append(
            "lenalidomide maintenance ended without a documented reason before new therapy; progression on maintenance cannot be confirmed"
        )
        return None
    return False


def tcr_history(courses: list[Course], episode_dates: list[date]) -> list[TcrTherapy]:
    """Every CAR-T / bispecific / ADC course, in time order, with how it ended (CLINICAL_LOGIC §5)."""
    out: list[TcrTherapy] = []
    for c in sorted(courses, key=lambda c: c.start):
        spec = TCR_AGENTS.get(c.agent)
        if spec is None:
            continue
        kind, target = spec
        p = course_progression(c, episode_dates)
        outcome = "refractory" if p is not None or c.stop_reason == "progression" else (
            "ongoing" if c.ongoing else "exposed")
        out.append(TcrTherapy(
            agent=c.agent, kind=kind, target=target or "unknown",
            start=c.end if kind == "CAR-T" else c.start, end=None if c.ongoing else c.end,
            line=c.lines[-1] if c.lines else None, outcome=outcome,  # type: ignore[arg-type]
            progression_date=p, sources=list(c.sources)))
    return out


def target_states(history: list[TcrTherapy]) -> dict[str, TargetStatus]:
    """BCMA / GPRC5D: refractory if any therapy against it failed, exposed if any was given, else naive."""
    out: dict[str, TargetStatus] = {}
    for t in TARGETS:
        outcomes = {h.outcome for h in history if h.target == t}
        out[t] = "refractory" if "refractory" in outcomes else ("exposed" if outcomes else "naive")
    return out
