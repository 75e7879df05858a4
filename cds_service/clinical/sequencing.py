"""Sequencing after T-cell redirection (IMWG 2025, EMN 2025 consensus), read from the state.

- No therapy against a target the disease progressed on (target `refractory` in the state, or a
  refractory agent of that target): not offered, and ordering it is a finding.
- After such a failure, switch target (BCMA → GPRC5D: talquetamab).
- CAR-T before a BCMA bispecific when both fit; CAR-T after a bispecific only ≥ 6 months after its
  last dose.
- Bendamustine and high-dose alkylators are to be avoided before planned T-cell redirection.
The thresholds and texts are data (cards/modifiers.yaml `sequencing`).
"""

from __future__ import annotations

from datetime import date, timedelta

from cds_service.clinical.model import ClinicalState, TcrTherapy
from cds_service.knowledge.model import Catalog


def _fmt(d: date | None) -> str:
    return d.isoformat() if d else "date not recorded"


def describe(t: TcrTherapy) -> str:
    """One therapy in words a clinician can check against the chart."""
    line = f"line {t.line}" if t.line else "line not known"
    prog = f", progression {_fmt(t.progression_date)}" if t.progression_date else ""
    when = f"infused {_fmt(t.end or t.start)}" if t.kind == "CAR-T" else f"{_fmt(t.start)} – {_fmt(t.end)}"
    return f"{t.agent} ({t.kind}, {line}, {when}{prog})"


def failed_targets(state: ClinicalState, catalog: Catalog) -> dict[str, str]:
    """target -> the therapy (or agent) the disease progressed on, in words.

    Read from the state's target states and T-cell redirecting history; an agent of a target marked
    refractory in `agents` counts too, so a history recorded only as drug exposures is not missed.
    """
    out: dict[str, str] = {}
    for t in sorted(state.tcr_history, key=lambda x: x.progression_date or x.end or x.start or date.min):
        if t.outcome == "refractory":
            out[t.target] = describe(t)
    for target, status in state.targets.items():
        if status == "refractory" and target not in out:
            out[target] = f"{target}-directed therapy (target state refractory)"
    for agent, ev in state.agents.items():
        tcr = catalog.tcr_agents.get(agent)
        if tcr and ev.status == "refractory" and tcr.target not in out:
            lines = ", ".join(str(n) for n in ev.lines) or "?"
            out[tcr.target] = f"{agent} (line {lines}, progression {_fmt(ev.progression_date)})"
    return out


def last_bispecific_dose(state: ClinicalState, catalog: Catalog) -> date | None:
    """The most recent bispecific dose (an ongoing one counts as today's)."""
    last: date | None = None
    for t in state.tcr_history:
        if t.kind != "bispecific":
            continue
        d = state.as_of if t.outcome == "ongoing" else (t.end or t.start)
        if d and (last is None or d > last):
            last = d
    for agent, ev in state.agents.items():
        tcr = catalog.tcr_agents.get(agent)
        if tcr and tcr.kind == "bispecific":
            d = state.as_of if ev.ongoing else ev.last_dose
            if d and (last is None or d > last):
                last = d
    return last


def car_t_wait_until(state: ClinicalState, catalog: Catalog, months: int) -> tuple[date, date] | None:
    """(last bispecific dose, earliest CAR-T date) when CAR-T would come too soon after a bispecific."""
    last = last_bispecific_dose(state, catalog)
    if last is None or state.as_of is None:  # pure: no clock, the state's as-of date decides
        return None
    earliest = last + timedelta(days=round(months * 30.44))
    return (last, earliest) if state.as_of < earliest else None
