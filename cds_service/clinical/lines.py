"""IMWG lines of therapy from exposure courses (clinical/courses.py builds the courses).

Sources: Rajkumar SV, Richardson P, San Miguel JF. Blood 2015;126(7):921-922 (lines of therapy);
Rajkumar SV et al. Blood 2011;117(18):4691-4695; CLINICAL_LOGIC §1.

Operational decisions (each a reading of the IMWG text, kept in one place so it can be reviewed):
- Courses (records of one agent merged, steroids apart, dateless records apart): see courses.py.
- A new line starts when (a) an agent not yet in the line is added or substituted, (b) after a
  progression episode any new course starts, or (c) treatment restarts after > 90 days with no
  anti-myeloma agent (treatment-free interval).
- Not a new line: agents started within 35 days of the line start (regimen assembled over the
  first cycle), an agent added to the still-running regimen within 90 days of its start with no
  progression and no toxicity stop (the plan did not change, CLINICAL_LOGIC §1), dropping agents, resuming an agent of the line after a holiday, a planned ASCT
  (incl. a tandem within 6 months), and maintenance / consolidation: after an ASCT, any agent
  started ≤ ~6 months after it (agents of the line and the usual maintenance drugs count as
  maintenance; others, e.g. KRd after VRd induction, as planned consolidation) unless an agent
  of the line had stopped for toxicity (then a substitution, a new line); without ASCT, a proper subset of the line's agents made of maintenance
  drugs (or an anti-CD38) restarted alone ≤ ~6 months after induction (restarting the whole
  regimen is retreatment, a new line) — in both cases only with no progression between.
- A single agent continuing > 60 days after all the other agents of its line stopped is
  maintenance from the day they stopped (VRd → lenalidomide alone); a doublet given continuously
  (Rd) is not maintenance.
- Melphalan / cyclophosphamide given around an ASCT (60 days before to 3 days after) are
  conditioning / mobilisation, part of the transplant, never a new line; cyclophosphamide /
  fludarabine / bendamustine in the 14 days before a CAR-T infusion are lymphodepletion, part of
  the CAR-T line.
- A CAR-T infusion is one dose; therapy started ≤ 90 days before the infusion, or after the T-cell
  collection for it (apheresis ≤ 6 months before; from 14 days before the collection), with no
  progression between is bridging, part of the CAR-T line (CLINICAL_LOGIC §5).
  A CAR-T line ends with the infusion: "progression" if any progression follows, else "completed".
- Records without a usable start (only an end date, only MedicationStatement.dateAsserted, an
  invalid start) form courses of their own that never open or shape a line: after segmentation
  each joins the line its known date falls in (from the line start to 60 days after its last
  activity), or stays undated (`place_unanchored`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from cds_service.clinical.courses import (
    CONDITIONING_AGENTS,
    COURSE_GAP_DAYS,
    LYMPHODEPLETION_AGENTS,
    TREATMENT_FREE_DAYS,
    Course,
)
from cds_service.clinical.model import CAR_T_AGENTS, TherapyLine
from cds_service.record.model import TransplantEvent

MAINTENANCE_AGENTS = frozenset({"lenalidomide", "thalidomide", "bortezomib", "ixazomib"})
ANTI_CD38 = frozenset({"daratumumab", "isatuximab"})
LYMPHODEPLETION_DAYS = 14
# bridging: therapy begun this long before a CAR-T infusion (apheresis → infusion takes weeks)
BRIDGING_DAYS = 90
# a T-cell collection serves the infusion that follows within this long (manufacturing waits)
COLLECTION_TO_INFUSION_DAYS = 183
# a dateless record joins a line when its date falls up to this long after the line's last activity
PLACE_AFTER_DAYS = 60
ASSEMBLY_DAYS = 35
# an agent added (nothing stopped) without progression or toxicity this soon after the line start
# completes the planned regimen (approval / supply delays), CLINICAL_LOGIC §1
LATE_ADDITION_DAYS = 90
MAINTENANCE_WINDOW_DAYS = 183
TANDEM_DAYS = 183
# A progression must come at least this long after a start to be "on" it; earlier it is the
# progression that led to the start (charting lags of days to weeks are common).
MIN_ON_TREATMENT_DAYS = 21
# An agent of the old line belongs to the new one only when it goes on for longer than this after
# the change (a stop date charted a few weeks late is overlap, not a continuing agent).
CARRY_OVER_DAYS = 30
# A progression dated shortly after the next line started still ended the previous line.
PROGRESSION_LAG_DAYS = 14


@dataclass
class _Line:
    start: date
    courses: list[Course] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    asct: list[date] = field(default_factory=list)
    asct_sources: list[str] = field(default_factory=list)

    @property
    def activity_end(self) -> date:
        ends = [c.end for c in self.courses] + list(self.asct)
        return max(ends) if ends else self.start


def _progression_between(prog_dates: list[date], after: date, until: date) -> date | None:
    for p in prog_dates:
        if after < p <= until:
            return p
    return None


def _near_asct(c: Course, asct_dates: list[date]) -> bool:
    return c.agent in CONDITIONING_AGENTS and any(
        a - timedelta(days=60) <= c.start <= a + timedelta(days=3) for a in asct_dates
    )


def segment_lines(courses: list[Course], asct: list[TransplantEvent], prog_dates: list[date],
                  collections: list[date] | None = None) -> list[_Line]:
    """Assign courses (and dated ASCTs) to IMWG lines; see the module docstring for the rules.

    `collections`: T-cell collection (apheresis) dates for a CAR-T; a line begun after one (or up to
    14 days before it) and running into the infusion without progression is bridging."""
    collected = sorted(d for d in collections or [] if isinstance(d, date))
    asct_events = sorted((t.date, t.source) for t in asct if isinstance(t.date, date))
    asct_dates = [d for d, _ in asct_events]
    lines: list[_Line] = []

    def add_asct(d: date, src: str) -> None:
        if lines:
            cur = lines[-1]
            if cur.asct and (d - cur.asct[-1]).days <= TANDEM_DAYS:
                cur.asct.append(d)
                cur.asct_sources.append(src)
                return
            if not cur.asct and d <= cur.activity_end + timedelta(days=MAINTENANCE_WINDOW_DAYS):
                cur.asct.append(d)
                cur.asct_sources.append(src)
                return
        lines.append(_Line(start=d, asct=[d], asct_sources=[src]))

    def new_line(c: Course) -> None:
        line = _Line(start=c.start)
        if lines:
            for prev_c in lines[-1].courses:  # agents continuing through the change
                if prev_c.end > c.start + timedelta(days=CARRY_OVER_DAYS) and not prev_c.conditioning:
                    line.courses.append(prev_c)
                    if prev_c.agent not in line.agents:
                        line.agents.append(prev_c.agent)
        line.courses.append(c)
        if c.agent not in line.agents:
            line.agents.append(c.agent)
        lines.append(line)

    def join(line: _Line, c: Course, maintenance: bool = False) -> None:
        line.courses.append(c)
        if c.agent not in line.agents and not c.conditioning:
            line.agents.append(c.agent)
        if maintenance and c.maintenance_from is None:
            c.maintenance_from = c.start

    car_t_days = [c.end for c in courses if c.agent in CAR_T_AGENTS]
    lymphodepletion: list[Course] = []
    pending = list(asct_events)
    for idx, c in enumerate(courses):
        while pending and pending[0][0] <= c.start:
            add_asct(*pending.pop(0))
        if c.agent in LYMPHODEPLETION_AGENTS and any(
            day - timedelta(days=LYMPHODEPLETION_DAYS) <= c.start <= day for day in car_t_days
        ):
            c.conditioning = True  # lymphodepletion before a CAR-T: joins the CAR-T's line below
            lymphodepletion.append(c)
            continue
        if _near_asct(c, asct_dates):
            c.conditioning = True
            if lines:
                join(lines[-1], c)
            else:
                new_line(c)
            continue
        if not lines:
            new_line(c)
            continue
        cur = lines[-1]
        gap = (c.start - cur.activity_end).days
        prog = _progression_between(
            prog_dates,
            cur.start + timedelta(days=MIN_ON_TREATMENT_DAYS),
            c.start + timedelta(days=PROGRESSION_LAG_DAYS),
        )
        line_agents = set(cur.agents)
        after_collection = any(
            a - timedelta(days=LYMPHODEPLETION_DAYS) <= cur.start <= c.end
            and a <= c.end <= a + timedelta(days=COLLECTION_TO_INFUSION_DAYS)
            for a in collected
        )
        if c.agent in CAR_T_AGENTS and prog is None and (
            (c.end - cur.start).days <= BRIDGING_DAYS or after_collection
        ):
            # the running line began in the weeks before the infusion with no progression since:
            # bridging therapy, part of the CAR-T line (CLINICAL_LOGIC §5)
            join(cur, c)
            continue
        if prog is None and (c.start - cur.start).days <= ASSEMBLY_DAYS:
            join(cur, c)
            continue
        own = [o for o in cur.courses if not o.conditioning]
        if (
            prog is None
            and (c.start - cur.start).days <= LATE_ADDITION_DAYS
            and own
            and all(o.ongoing or o.end >= c.start for o in own)
            and not any(o.stop_reason == "toxicity" for o in own)
        ):
            # an agent ADDED to a running regimen early in the plan, with no progression or toxicity
            # (daratumumab joining Rd after insurance approval): the plan did not change, same line
            join(cur, c)
            continue
        after_asct = bool(cur.asct) and cur.asct[-1] <= c.start <= cur.asct[-1] + timedelta(
            days=MAINTENANCE_WINDOW_DAYS
        )
        if prog is None and after_asct and (c.agent in line_agents or c.agent in MAINTENANCE_AGENTS):
            join(cur, c, maintenance=True)
            continue
        if prog is None and after_asct and not any(
            o.stop_reason == "toxicity" and not o.conditioning for o in cur.courses
        ):
            # planned post-ASCT consolidation with another agent (VRd -> ASCT -> KRd consolidation,
            # isatuximab added to maintenance): IMWG's "planned sequential therapy", still one line.
            # A substitution for toxicity stays a new line (CLINICAL_LOGIC §1).
            join(cur, c)
            continue
        others_active = any(o.end >= c.start and not o.conditioning for o in cur.courses)
        # what restarts together with c: maintenance is a proper subset of the line's agents made of
        # the usual maintenance drugs; restarting the whole regimen is retreatment (a new line)
        group = {
            o.agent
            for o in courses[idx:]
            if o.start <= c.start + timedelta(days=ASSEMBLY_DAYS) and not _near_asct(o, asct_dates)
        }
        maintenance_like = group < line_agents and group <= MAINTENANCE_AGENTS | ANTI_CD38
        if prog is None and maintenance_like and not others_active and gap <= MAINTENANCE_WINDOW_DAYS:
            join(cur, c, maintenance=True)
            continue
        if prog is not None:
            new_line(c)
            continue
        if gap > TREATMENT_FREE_DAYS:
            new_line(c)
            continue
        if c.agent in line_agents:
            join(cur, c)
            continue
        new_line(c)
    for ev in pending:
        add_asct(*ev)
    for c in lymphodepletion:
        home = next((ln for ln in reversed(lines) for o in ln.courses
                     if o.agent in CAR_T_AGENTS and o.end - timedelta(days=LYMPHODEPLETION_DAYS) <= c.start <= o.end),
                    None)
        if home is not None:
            home.courses.append(c)
        elif lines:
            lines[-1].courses.append(c)
    for i, line in enumerate(lines, start=1):
        for c in line.courses:
            if i not in c.lines:
                c.lines.append(i)
    _mark_continuing_maintenance(lines)
    return lines


def place_unanchored(lines: list[_Line], unanchored: list[Course]) -> list[Course]:
    """Put courses without a usable start into the line their known date falls in; return the rest.

    The date is the record's end (or its dateAsserted); a line holds it from its start to 60 days
    after its last activity, the latest such line wins. Placing never opens, splits or merges a
    line: the line count is the same with or without these records.
    """
    unplaced: list[Course] = []
    for c in unanchored:
        day = c.end if c.date_basis == "end date" else c.start
        home = None
        for number, line in enumerate(lines, start=1):
            if line.start <= day <= line.activity_end + timedelta(days=PLACE_AFTER_DAYS):
                home = (number, line)
        if home is None:
            unplaced.append(c)
            continue
        number, line = home
        line.courses.append(c)
        if c.agent not in line.agents:
            line.agents.append(c.agent)
        c.lines = [number]
    return unplaced


def _mark_continuing_maintenance(lines: list[_Line]) -> None:
    """A single agent continuing > 60 days after all other agents of the line stopped is maintenance
    (e.g. VRd → bortezomib stopped → lenalidomide alone). Continuous doublets (Rd) are not."""
    for number, line in enumerate(lines, start=1):
        own = [c for c in line.courses if not c.conditioning]
        agents = {c.agent for c in own}
        if len(agents) < 2:
            continue
        for c in own:
            if c.maintenance_from is not None or (c.lines and c.lines[-1] != number):
                continue  # a course carried into a later line was not left alone in this one
            others = [o.end for o in own if o.agent != c.agent and o.start <= c.end]
            if not others:
                continue
            others_end = max(others)
            if c.start <= others_end and (c.end - others_end).days > COURSE_GAP_DAYS:
                c.maintenance_from = others_end


def _fmt(agents: list[str]) -> str:
    return " + ".join(agents) if agents else "no recorded drugs"


def finalize_lines(
    raw: list[_Line], steroids: list[Course], episode_dates: list[date], as_of: date
) -> list[TherapyLine]:
    """Turn segmented lines into TherapyLine records: dates, label, how each line ended."""
    out: list[TherapyLine] = []
    used: set[date] = set()
    for i, line in enumerate(raw):
        nxt = raw[i + 1] if i + 1 < len(raw) else None
        own = [c for c in line.courses]
        is_last = nxt is None
        ongoing = is_last and any(c.ongoing for c in own)
        ends = [c.end for c in own] + list(line.asct)
        end: date | None = max(ends) if ends else line.start
        if nxt is not None and end is not None and end > nxt.start:
            end = nxt.start
        if ongoing:
            end = None
        # the progression that ended this line: after it started, before (or just after) the next
        limit = nxt.start + timedelta(days=PROGRESSION_LAG_DAYS) if nxt else as_of + timedelta(days=1)
        prog = None
        for p in episode_dates:
            if p in used:
                continue
            if line.start + timedelta(days=MIN_ON_TREATMENT_DAYS) < p <= limit:
                prog = p
                used.add(p)
                break
        last_end = max((c.end for c in own if not c.conditioning), default=None)
        final = [c for c in own if not c.conditioning and c.end == last_end]
        reasons = {c.stop_reason for c in final} | (
            {c.stop_reason for c in own if c.end <= nxt.start and not c.conditioning} if nxt is not None else set()
        )
        if "toxicity" in reasons:
            stopped_by = "toxicity"
        elif "progression" in reasons:
            stopped_by = "progression"
        elif reasons == {"completed"}:
            stopped_by = "completed"
        else:
            stopped_by = "unknown"
        if not ongoing and any(c.agent in CAR_T_AGENTS for c in own):
            # a CAR-T is given once: any progression after it ends the line; none → the line is done
            ended_by = "progression" if prog is not None else "completed"
        elif prog is not None and (ongoing or last_end is None or prog <= last_end + timedelta(days=60)):
            ended_by = "progression"  # progression on the line (or within 60 days of its last dose)
        elif ongoing:
            ended_by = "ongoing"
        elif prog is not None and stopped_by == "unknown":
            ended_by = "unknown"  # stopped without a reason; the later progression is shown apart
        else:
            ended_by = stopped_by
        induction = [c.agent for c in own if c.maintenance_from is None or c.maintenance_from > c.start]
        induction = list(dict.fromkeys(a for a in induction if a))
        maint = list(dict.fromkeys(c.agent for c in own if c.maintenance_from is not None))
        span_end = end or as_of
        ster = list(
            dict.fromkeys(
                s.agent
                for s in steroids
                if line.start - timedelta(days=7) <= s.start <= span_end or s.start <= line.start <= s.end
            )
        )
        parts = [_fmt([a for a in line.agents if a in induction or a not in maint] + ster)]
        if line.asct:
            parts.append("ASCT" if len(line.asct) == 1 else "tandem ASCT")
        if maint:
            parts.append(_fmt(maint) + " maintenance")
        label = " → ".join(parts)
        sources: list[str] = []
        for c in own:
            sources.extend(c.sources)
        sources.extend(line.asct_sources)
        out.append(
            TherapyLine(
                number=i + 1,
                start=line.start,
                end=end,
                agents=list(line.agents),
                label=label,
                ongoing=ongoing,
                includes_asct=bool(line.asct),
                asct_date=line.asct[-1] if line.asct else None,
                maintenance_agents=maint,
                ended_by=ended_by,
                progression_date=prog,
                sources=list(dict.fromkeys(sources)),
            )
        )
    return out
