"""Per-agent exposure courses and IMWG lines of therapy.

Sources: Rajkumar SV, Richardson P, San Miguel JF. Blood 2015;126(7):921-922 (lines of therapy);
Rajkumar SV et al. Blood 2011;117(18):4691-4695; CLINICAL_LOGIC §1.

Operational decisions (each a reading of the IMWG text, kept in one place so it can be reviewed):
- Only records with an `agent` that is not a steroid define courses and lines; steroids only
  appear in line labels (dexamethasone is in nearly every regimen and says nothing about class).
- Records of one agent merge into one course when the gap between them is ≤ 60 days
  (per-cycle requests, per-dose administrations, drug holidays); a statement's period is a course.
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
- Records: a cycle order known only by its date covers ~20 days (the dosing days of a cycle); a
  record known only by its end date covers the 28 days before it;
  statuses entered-in-error / not-taken / not-done / cancelled / draft / intended and dates after
  as_of are not exposure.
- Melphalan / cyclophosphamide given around an ASCT (60 days before to 3 days after) are
  conditioning / mobilisation, part of the transplant, never a new line; cyclophosphamide /
  fludarabine / bendamustine in the 14 days before a CAR-T infusion are lymphodepletion, part of
  the CAR-T line.
- A CAR-T infusion is one dose (its course never "runs"); therapy started ≤ 90 days before the
  infusion with no progression between is bridging, part of the CAR-T line (CLINICAL_LOGIC §5).
  A CAR-T line ends with the infusion: "progression" if any progression follows, else "completed".
- A course whose last record is an administration ≤ 35 days before as_of is running
  (the next dose is due), unless the agent is a CAR-T or a conditioning drug.
- Records without a usable start (only an end date, only MedicationStatement.dateAsserted, an
  invalid start) form courses of their own that never open or shape a line: after segmentation
  each joins the line its known date falls in (from the line start to 60 days after its last
  activity), or stays undated (`place_unanchored`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from cds_service.clinical.model import CAR_T_AGENTS, UNSPECIFIED_AGENTS, TherapyLine
from cds_service.record.model import MedicationUse, TransplantEvent

STEROIDS = frozenset({"dexamethasone", "prednisone", "prednisolone", "methylprednisolone"})
MAINTENANCE_AGENTS = frozenset({"lenalidomide", "thalidomide", "bortezomib", "ixazomib"})
ANTI_CD38 = frozenset({"daratumumab", "isatuximab"})
CONDITIONING_AGENTS = frozenset({"melphalan", "cyclophosphamide"})
LYMPHODEPLETION_AGENTS = frozenset({"cyclophosphamide", "fludarabine", "bendamustine"})
LYMPHODEPLETION_DAYS = 14
# bridging: therapy begun this long before a CAR-T infusion (apheresis → infusion takes weeks)
BRIDGING_DAYS = 90
# an administration-only course whose last dose is this recent is running (q1-4 weekly dosing)
RECENT_DOSE_DAYS = 35
# a dateless record joins a line when its date falls up to this long after the line's last activity
PLACE_AFTER_DAYS = 60
SKIP_STATUSES = frozenset({"entered-in-error", "not-taken", "not-done", "cancelled", "draft", "intended"})

COURSE_GAP_DAYS = 60
# A still-active order whose dosing window ended at most this long ago is a cycle in its rest days.
ACTIVE_REST_DAYS = 14
# A cycle order known only by its date (authoredOn) covers the dosing days of a cycle (days 1-21).
REQUEST_CYCLE_DAYS = 20
# A record known only by its end date covers about one cycle before that end.
END_ONLY_DAYS = 28
TREATMENT_FREE_DAYS = 90
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
class Course:
    """One continuous exposure to one agent (merged from one or more chart records)."""

    agent: str
    start: date
    end: date  # last known dose day; as_of when ongoing
    ongoing: bool = False
    stop_reason: str = "unknown"
    stop_reason_text: str | None = None
    end_known: bool = True
    sources: list[str] = field(default_factory=list)
    conditioning: bool = False
    lines: list[int] = field(default_factory=list)
    maintenance_from: date | None = None  # set when the course is (partly) maintenance
    # False when no record of the course has a usable start date: it never opens or shapes a line
    anchored: bool = True
    date_basis: str = ""  # for unanchored courses: "end date" | "dateAsserted"
    administrations_only: bool = False


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


def _undated_record_dates(m: MedicationUse, as_of: date) -> tuple[date, date, bool, bool] | None:
    """Dates of a record without a usable start: its end, else its dateAsserted (never a line start)."""
    end = m.end if isinstance(m.end, date) else None
    if end is not None:
        # known only by its end ("taken until X", start not charted): at least one cycle of use
        # before it, so a progression days after that end is progression on the drug
        if end - timedelta(days=END_ONLY_DAYS) > as_of:
            return None
        return end - timedelta(days=END_ONLY_DAYS), min(end, as_of), False, True
    asserted = m.asserted if isinstance(m.asserted, date) else None
    if asserted is None or asserted > as_of:
        return None
    status = (m.status or "").lower()
    if m.ongoing or status in ("active", "on-hold", "intended"):
        return asserted, as_of, True, True  # "taking it" as of the assertion, still active: current use
    return asserted, asserted, False, False


def _record_dates(m: MedicationUse, as_of: date) -> tuple[date, date, bool, bool] | None:
    """(start, end, ongoing, end_known) of one record, or None when it cannot be placed in time."""
    start = m.start if isinstance(m.start, date) else None
    end = m.end if isinstance(m.end, date) else None
    if start is None:
        return _undated_record_dates(m, as_of)
    if start > as_of:
        return None  # planned in the future: not received yet
    if m.agent in CAR_T_AGENTS:
        # one infusion: the latest date the record carries (an order's date precedes it)
        day = min(max(start, end or start), as_of)
        return day, day, False, True
    status = (m.status or "").lower()
    if m.ongoing:
        return start, max(as_of, start), True, True
    if end is not None:
        if end >= as_of and status not in ("completed", "stopped"):
            return start, as_of, True, True
        if status in ("active", "on-hold", "in-progress") and (as_of - end).days <= ACTIVE_REST_DAYS:
            # an order still active whose dosing days just ended: the rest days of a running cycle
            return start, as_of, True, True
        if m.kind == "request" and end <= start and status not in ("stopped",):
            # a cycle order dated by authoredOn only: its doses run for about a cycle after it
            return start, min(start + timedelta(days=REQUEST_CYCLE_DAYS), as_of), False, True
        return start, min(max(end, start), as_of), False, True
    if m.kind == "administration":
        return start, start, False, True
    if status in ("active", "on-hold", "in-progress") and (
        m.kind == "statement" or (as_of - start).days <= TREATMENT_FREE_DAYS
    ):
        return start, as_of, True, True
    if m.kind == "request":
        return start, min(start + timedelta(days=REQUEST_CYCLE_DAYS), as_of), False, True
    return start, start, False, False


def _close_stale_cycle_orders(
    recs: list[tuple[date, date, bool, bool, MedicationUse]], as_of: date
) -> list[tuple[date, date, bool, bool, MedicationUse]]:
    """Per-cycle orders left "active" without an end (common in EHRs) are not all still running.

    With several open-ended cycle orders for one agent, each is superseded by the next one, and
    the last counts as running only while it is recent (≤ 60 days before as_of); older, it covered
    one cycle. A single open-ended order (a maintenance prescription with refills) stays ongoing.
    """
    open_orders = [r for r in recs if r[2] and r[4].kind == "request" and r[4].end is None]
    if len(open_orders) < 2:
        return recs
    last_start = max(r[0] for r in open_orders)
    open_ids = {id(r) for r in open_orders}  # identity: `r in open_orders` compared records field by field
    out = []
    for r in recs:
        if id(r) in open_ids and (r[0] < last_start or (as_of - r[0]).days > COURSE_GAP_DAYS):
            out.append((r[0], min(r[0] + timedelta(days=REQUEST_CYCLE_DAYS), as_of), False, True, r[4]))
        else:
            out.append(r)
    return out


def build_courses(meds: list[MedicationUse], as_of: date) -> tuple[list[Course], list[Course], list[str]]:
    """Merge records into per-agent courses → (anti-myeloma courses, steroid courses, undated agents)."""
    by_agent: dict[tuple[str, bool], list[tuple[date, date, bool, bool, MedicationUse]]] = {}
    undated: list[str] = []
    for m in meds or []:
        if not isinstance(m, MedicationUse) or not m.agent or m.kind == "draft":
            continue
        if (m.status or "").lower() in SKIP_STATUSES:
            continue
        placed = _record_dates(m, as_of)
        if placed is None:
            future = (isinstance(m.start, date) and m.start > as_of) or (
                m.start is None and any(isinstance(x, date) and x > as_of for x in (m.end, m.asserted)))
            if not future and m.agent not in STEROIDS:
                undated.append(m.agent)
            continue
        # records with and without a usable start never merge: the dateless ones must not shape lines
        by_agent.setdefault((m.agent, isinstance(m.start, date)), []).append((*placed, m))
    courses: list[Course] = []
    steroids: list[Course] = []
    for (agent, anchored), recs in by_agent.items():
        recs.sort(key=lambda r: (r[0], r[1]))
        recs = _close_stale_cycle_orders(recs, as_of)
        groups: list[list[tuple[date, date, bool, bool, MedicationUse]]] = []
        group_end: date | None = None
        for rec in recs:
            if groups and group_end is not None and rec[0] <= group_end + timedelta(days=COURSE_GAP_DAYS):
                groups[-1].append(rec)
                group_end = max(group_end, rec[1])
            else:
                groups.append([rec])
                group_end = rec[1]
        for g in groups:
            last = max(g, key=lambda r: (r[1], r[0], r[4].stop_reason != "unknown"))
            ongoing = any(r[2] for r in g)
            admins = all(r[4].kind == "administration" for r in g)
            if (
                last[4].kind == "administration"
                and not ongoing
                and agent not in CAR_T_AGENTS | CONDITIONING_AGENTS | LYMPHODEPLETION_AGENTS
                and last[4].stop_reason == "unknown"
                and (as_of - last[1]).days <= RECENT_DOSE_DAYS
            ):
                ongoing = True  # doses given until recently: the next one is due, the regimen runs
            c = Course(
                agent=agent,
                start=min(r[0] for r in g),
                end=max(as_of, last[1]) if ongoing else last[1],
                ongoing=ongoing,
                end_known=last[3],
                sources=list(dict.fromkeys(r[4].source for r in g)),
                anchored=anchored,
                date_basis="" if anchored else ("end date" if any(isinstance(r[4].end, date) for r in g)
                                                else "dateAsserted"),
                administrations_only=admins,
            )
            prog = [r[4] for r in g if r[4].stop_reason == "progression"]
            if prog:
                c.stop_reason = "progression"
                c.stop_reason_text = prog[-1].stop_reason_text
            elif not ongoing:
                c.stop_reason = last[4].stop_reason or "unknown"
                c.stop_reason_text = last[4].stop_reason_text
            (steroids if agent in STEROIDS else courses).append(c)
    courses = _merge_unnamed_car_t(courses)
    courses.sort(key=lambda c: (c.start, c.agent))
    steroids.sort(key=lambda c: (c.start, c.agent))
    return courses, steroids, sorted(set(undated))


def _merge_unnamed_car_t(courses: list[Course]) -> list[Course]:
    """A CAR-T procedure without its product and a medication record naming the product within 30
    days are one infusion: keep the named product, with both chart references, dated by the
    administration (the procedure's date when the named record is an order or a statement)."""
    named = [c for c in courses if c.agent in CAR_T_AGENTS and c.agent not in UNSPECIFIED_AGENTS]
    out = []
    for c in courses:
        if c.agent in UNSPECIFIED_AGENTS:
            twin = next((n for n in named if abs((n.end - c.end).days) <= 30), None)
            if twin is not None:
                twin.sources.extend(s for s in c.sources if s not in twin.sources)
                if not twin.administrations_only:
                    twin.start = twin.end = c.end  # an order's date precedes the infusion the procedure dates
                continue
        out.append(c)
    return out


def _progression_between(prog_dates: list[date], after: date, until: date) -> date | None:
    for p in prog_dates:
        if after < p <= until:
            return p
    return None


def _near_asct(c: Course, asct_dates: list[date]) -> bool:
    return c.agent in CONDITIONING_AGENTS and any(
        a - timedelta(days=60) <= c.start <= a + timedelta(days=3) for a in asct_dates
    )


def segment_lines(courses: list[Course], asct: list[TransplantEvent], prog_dates: list[date]) -> list[_Line]:
    """Assign courses (and dated ASCTs) to IMWG lines; see the module docstring for the rules."""
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
        if c.agent in CAR_T_AGENTS and prog is None and (c.end - cur.start).days <= BRIDGING_DAYS:
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
