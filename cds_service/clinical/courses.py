"""Per-agent exposure courses: chart records of one agent merged into continuous courses.

Sources: Rajkumar SV et al. Blood 2011;117(18):4691-4695 (exposure, 60-day rule); CLINICAL_LOGIC §1, §5.

Operational decisions (read with clinical/lines.py, which builds IMWG lines from these courses):
- Only records with an `agent` that is not a steroid define courses and lines; steroids only
  appear in line labels (dexamethasone is in nearly every regimen and says nothing about class).
- Records of one agent merge into one course when the gap between them is ≤ 60 days
  (per-cycle requests, per-dose administrations, drug holidays); a statement's period is a course.
- Records: a cycle order known only by its date covers ~20 days (the dosing days of a cycle); a
  record known only by its end date covers the 28 days before it; statuses entered-in-error /
  not-taken / not-done / cancelled / draft / intended and dates after as_of are not exposure.
- A CAR-T infusion is one dose (its course never "runs"), dated by the infusion; a CAR-T procedure
  without its product and a medication record naming the product ≤ 30 days apart are one infusion.
- A course whose last record is an administration ≤ 35 days before as_of is running
  (the next dose is due), unless the agent is a CAR-T or a conditioning drug.
- Records without a usable start (only an end date, only MedicationStatement.dateAsserted, an
  invalid start) never merge with dated ones: their courses are `anchored=False` and never open
  or shape a line (lines.place_unanchored puts them in one afterwards, or leaves them undated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from cds_service.clinical.model import CAR_T_AGENTS, UNSPECIFIED_AGENTS
from cds_service.record.model import MedicationUse

STEROIDS = frozenset({"dexamethasone", "prednisone", "prednisolone", "methylprednisolone"})
CONDITIONING_AGENTS = frozenset({"melphalan", "cyclophosphamide"})
LYMPHODEPLETION_AGENTS = frozenset({"cyclophosphamide", "fludarabine", "bendamustine"})
SKIP_STATUSES = frozenset({"entered-in-error", "not-taken", "not-done", "cancelled", "draft", "intended"})
COURSE_GAP_DAYS = 60
# A still-active order whose dosing window ended at most this long ago is a cycle in its rest days.
ACTIVE_REST_DAYS = 14
# A cycle order known only by its date (authoredOn) covers the dosing days of a cycle (days 1-21).
REQUEST_CYCLE_DAYS = 20
# A record known only by its end date covers about one cycle before that end.
END_ONLY_DAYS = 28
TREATMENT_FREE_DAYS = 90
# an administration-only course whose last dose is this recent is running (q1-4 weekly dosing)
RECENT_DOSE_DAYS = 35


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
