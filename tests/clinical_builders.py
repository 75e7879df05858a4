"""Hand-built PatientRecords for the clinical-core tests: short, readable, date-explicit."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from cds_service.record.model import (
    ConditionFact,
    CytoFinding,
    LabValue,
    MedicationUse,
    PatientRecord,
    ProgressionEvent,
    TransplantEvent,
)

AS_OF = date(2026, 11, 1)
_ids = itertools.count(1)


def d(text: str) -> date:
    return date.fromisoformat(text)


def med(
    agent: str | None,
    start: str | None,
    end: str | None = None,
    *,
    ongoing: bool = False,
    stop: str = "unknown",
    kind: str = "statement",
    status: str | None = None,
    display: str | None = None,
    category: str | None = None,
) -> MedicationUse:
    """One medication record; `stop` is the StopReason."""
    return MedicationUse(
        source=f"MedicationStatement/m{next(_ids)}" if kind == "statement" else f"MedicationRequest/r{next(_ids)}",
        kind=kind,  # type: ignore[arg-type]
        display=display or (agent or "drug"),
        agent=agent,
        category=category,
        status=status or ("active" if ongoing else "completed"),
        start=d(start) if start else None,
        end=d(end) if end else None,
        ongoing=ongoing,
        stop_reason=stop,  # type: ignore[arg-type]
    )


def regimen(agents: list[str], start: str, end: str | None = None, **kw) -> list[MedicationUse]:
    return [med(a, start, end, **kw) for a in agents]


def cycles(agent: str, start: str, n: int, every: int = 28, length: int = 21, **kw) -> list[MedicationUse]:
    """Per-cycle MedicationRequests (one per cycle), the way many EHRs record chemotherapy."""
    s = d(start)
    out = []
    for i in range(n):
        cs = s + timedelta(days=i * every)
        out.append(med(agent, cs.isoformat(), (cs + timedelta(days=length - 1)).isoformat(), kind="request", **kw))
    return out


def prog(day: str, kind: str = "disease-status") -> ProgressionEvent:
    return ProgressionEvent(date=d(day), source=f"Observation/p{next(_ids)}", kind=kind, detail="worsened")


def asct(day: str | None, kind: str = "autologous") -> TransplantEvent:
    return TransplantEvent(date=d(day) if day else None, kind=kind, source=f"Procedure/t{next(_ids)}")  # type: ignore[arg-type]


def mprot(day: str, value: float, unit: str = "g/dL") -> LabValue:
    return LabValue(date=d(day), value=value, unit=unit, source=f"Observation/mp{next(_ids)}", code="33358-3")


def ecog(day: str, value: int) -> LabValue:
    return LabValue(date=d(day), value=value, unit="{score}", source=f"Observation/e{next(_ids)}", code="89247-1")


def fish(abn: str, present: bool, day: str | None = "2020-01-10") -> CytoFinding:
    return CytoFinding(
        abnormality=abn, present=present, date=d(day) if day else None, source=f"Observation/f{next(_ids)}"
    )


def cond(kind: str, onset: str | None = "2020-01-01", **kw) -> ConditionFact:
    return ConditionFact(kind=kind, source=f"Condition/c{next(_ids)}", onset=d(onset) if onset else None, **kw)


def record(
    meds: list[MedicationUse] | None = None,
    *,
    progressions: list[ProgressionEvent] | None = None,
    transplants: list[TransplantEvent] | None = None,
    m_protein: list[LabValue] | None = None,
    ecogs: list[LabValue] | None = None,
    cyto: list[CytoFinding] | None = None,
    conditions: list[ConditionFact] | None = None,
    birth: str | None = "1960-05-01",
    myeloma: bool = True,
) -> PatientRecord:
    conds = list(conditions or [])
    if myeloma:
        conds.insert(0, cond("multiple-myeloma", "2020-01-01"))
    return PatientRecord(
        patient_id="test",
        birth_date=d(birth) if birth else None,
        conditions=conds,
        medications=list(meds or []),
        progressions=list(progressions or []),
        m_protein=list(m_protein or []),
        ecog=list(ecogs or []),
        cytogenetics=list(cyto or []),
        transplants=list(transplants or []),
    )


def flatten(*groups: list[MedicationUse] | MedicationUse) -> list[MedicationUse]:
    out: list[MedicationUse] = []
    for g in groups:
        out.extend(g if isinstance(g, list) else [g])
    return out
