"""Progression evidence: charted events plus IMWG progressive disease computed from M-protein.

Why a separate module: lines, refractoriness, response duration and salvage ASCT all hang on
the same progression dates, so they are gathered once, de-duplicated into *episodes* and shared.

Sources: IMWG response criteria (Kumar S et al., Lancet Oncol 2016;17:e328, via
docs/reference/terminology.md §4): PD = serum M-protein rise ≥ 25 % from the lowest value
AND ≥ 0.5 g/dL absolute (≥ 1 g/dL when the nadir is ≥ 5 g/dL), confirmed on two consecutive
assessments.
"""

from __future__ import annotations

from datetime import date, timedelta

from cds_service.record.model import ConditionFact, LabValue, MedicationUse, PatientRecord, ProgressionEvent

# Events describing one relapse are charted on different days (lab rise, status note, relapse
# diagnosis, medication stop); events closer than this are one episode dated by the earliest.
EPISODE_WINDOW_DAYS = 45


def _to_g_dl(v: LabValue) -> float | None:
    """M-protein in g/dL whatever unit the lab used (g/L and mg/dL are common in Europe / US)."""
    try:
        value = float(v.value)
    except (TypeError, ValueError):
        return None
    if value != value or value < 0:  # NaN or negative: unusable
        return None
    unit = (v.unit or "").strip().lower().replace(" ", "")
    if unit in ("g/l", "gm/l"):
        return value / 10.0
    if unit in ("mg/dl",):
        return value / 1000.0
    if unit in ("mg/l",):
        return value / 10000.0
    return value  # g/dL or unitless: the LOINC 33358-3 default


def _pd_threshold(nadir: float) -> float:
    return 1.0 if nadir >= 5.0 else 0.5


def _qualifies(value: float, nadir: float) -> bool:
    rise = value - nadir
    return rise >= _pd_threshold(nadir) - 1e-9 and (nadir <= 0 or rise >= 0.25 * nadir - 1e-9)


def m_protein_progressions(values: list[LabValue], therapy_starts: list[date] | None = None) -> list[ProgressionEvent]:
    """IMWG PD episodes from a serum M-protein series.

    Nadir = lowest value before the point. The PD date is the first qualifying value; it is
    confirmed when the next value also qualifies. A qualifying value followed by a
    non-qualifying one is a transient blip and ignored — unless new therapy started between the
    two (clinicians acted on the rise and the next value shows the new response); a single
    qualifying *last* value is accepted and the event says "unconfirmed". After a PD the nadir is re-set only once values
    fall again (a response to the next therapy), so a continuing rise is one episode.
    """
    series: list[tuple[date, float, str]] = []
    for v in values or []:
        if not isinstance(v, LabValue) or not isinstance(v.date, date):
            continue
        g = _to_g_dl(v)
        if g is not None:
            series.append((v.date, g, v.source))
    series.sort(key=lambda t: t[0])
    starts = sorted(therapy_starts or [])
    events: list[ProgressionEvent] = []
    nadir: float | None = None
    in_pd = False
    prev: float | None = None
    for i, (d, val, src) in enumerate(series):
        if in_pd:
            if prev is not None and val < prev:
                in_pd = False
                nadir = val
            prev = val
            continue
        if nadir is not None and _qualifies(val, nadir):
            nxt = series[i + 1] if i + 1 < len(series) else None
            acted = nxt is not None and any(d - timedelta(days=7) <= s <= nxt[0] for s in starts)
            if nxt is not None and not _qualifies(nxt[1], nadir) and not acted:
                prev = val  # transient rise, not confirmed
                continue
            if nxt is None:
                note = "single value, not yet confirmed"
            elif _qualifies(nxt[1], nadir):
                note = "confirmed by the next value"
            else:
                note = "new therapy started before the next value"
            events.append(
                ProgressionEvent(
                    date=d,
                    source=src,
                    kind="m-protein",
                    detail=f"IMWG PD: serum M-protein {val:.2f} g/dL from nadir {nadir:.2f} g/dL ({note})",
                )
            )
            in_pd = True
            prev = val
            continue
        nadir = val if nadir is None else min(nadir, val)
        prev = val
    return events


FLC_ABS_MG_L = 100.0  # IMWG: absolute increase of the dFLC must be > 10 mg/dL
MEASURABLE_SERUM_G_DL = 1.0  # FLC criteria apply only without measurable serum M-protein


def flc_progressions(
    flc: list[LabValue], m_protein: list[LabValue] | None = None, therapy_starts: list[date] | None = None
) -> list[ProgressionEvent]:
    """IMWG PD from serum free light chains, only when the serum M-protein is not measurable
    (< 1 g/dL throughout): dFLC (involved - uninvolved, same-day pairs, involved = the larger chain at
    the first pair) rising >= 25 % from its nadir and by > 100 mg/L. Confirmation as for M-protein."""
    serum = [g for v in m_protein or [] if isinstance(v, LabValue) and (g := _to_g_dl(v)) is not None]
    if serum and max(serum) >= MEASURABLE_SERUM_G_DL:
        return []
    by_day: dict[date, dict[str, tuple[float, str]]] = {}
    for v in flc or []:
        if isinstance(v, LabValue) and isinstance(v.date, date) and isinstance(v.value, (int, float)):
            by_day.setdefault(v.date, {})[v.code] = (float(v.value), v.source)
    pairs = sorted((d, x) for d, x in by_day.items() if "36916-5" in x and "33944-0" in x)
    if len(pairs) < 2:
        return []
    kappa_involved = pairs[0][1]["36916-5"][0] >= pairs[0][1]["33944-0"][0]
    series = []
    for d, x in pairs:
        k, lam = x["36916-5"][0], x["33944-0"][0]
        series.append((d, (k - lam) if kappa_involved else (lam - k), x["36916-5" if kappa_involved else "33944-0"][1]))

    def qualifies(val: float, nadir: float) -> bool:
        rise = val - nadir
        return rise > FLC_ABS_MG_L and (nadir <= 0 or rise >= 0.25 * nadir - 1e-9)

    starts = sorted(therapy_starts or [])
    events: list[ProgressionEvent] = []
    nadir: float | None = None
    in_pd = False
    prev: float | None = None
    chain = "kappa" if kappa_involved else "lambda"
    for i, (d, val, src) in enumerate(series):
        if in_pd:
            if prev is not None and val < prev:
                in_pd, nadir = False, val
            prev = val
            continue
        if nadir is not None and qualifies(val, nadir):
            nxt = series[i + 1] if i + 1 < len(series) else None
            acted = nxt is not None and any(d - timedelta(days=7) <= s <= nxt[0] for s in starts)
            if nxt is not None and not qualifies(nxt[1], nadir) and not acted:
                prev = val
                continue
            note = ("single value, not yet confirmed" if nxt is None else
                    "confirmed by the next value" if qualifies(nxt[1], nadir) else
                    "new therapy started before the next value")
            events.append(ProgressionEvent(
                date=d, source=src, kind="flc",
                detail=f"IMWG PD: dFLC ({chain}) {val:.0f} mg/L from nadir {nadir:.0f} mg/L ({note})"))
            in_pd, prev = True, val
            continue
        nadir = val if nadir is None else min(nadir, val)
        prev = val
    return events


def _medication_progressions(meds: list[MedicationUse]) -> list[ProgressionEvent]:
    """A medicine stopped for progression / no response dates a progression at its stop."""
    out: list[ProgressionEvent] = []
    for m in meds:
        if isinstance(m, MedicationUse) and m.agent and m.stop_reason == "progression" and isinstance(m.end, date):
            out.append(
                ProgressionEvent(
                    date=m.end,
                    source=m.source,
                    kind="medication-status-reason",
                    detail=f"{m.agent} stopped for progression / no response",
                )
            )
    return out


def _condition_progressions(record: PatientRecord, therapy_starts: list[date] | None = None) -> list[ProgressionEvent]:
    """Relapse-coded Conditions dated by their onset. A problem-list entry re-coded to "in relapse"
    often keeps the diagnosis date as onset (before any therapy, so it cannot date a relapse); then
    its recordedDate, when later than the first therapy, dates the relapse."""
    out: list[ProgressionEvent] = []
    starts = [d for d in therapy_starts or [] if isinstance(d, date)]
    first = min(starts) if starts else None
    for c in record.conditions or []:
        if not (isinstance(c, ConditionFact) and c.relapse):
            continue
        when = c.onset if isinstance(c.onset, date) else None
        recorded = getattr(c, "recorded", None)
        if (
            first is not None
            and isinstance(recorded, date)
            and (when is None or when <= first + timedelta(days=21))
            and recorded > first + timedelta(days=21)
        ):
            when = recorded
        if when is not None:
            out.append(
                ProgressionEvent(date=when, source=c.source, kind="condition-relapse", detail="myeloma in relapse")
            )
    return out


def all_progression_events(record: PatientRecord, therapy_starts: list[date] | None = None) -> list[ProgressionEvent]:
    """Every dated progression event: charted, from medication stops, relapse conditions, M-protein.

    `therapy_starts` (course start dates) lets a rise followed by new therapy count as PD."""
    events: list[ProgressionEvent] = [
        e for e in (record.progressions or []) if isinstance(e, ProgressionEvent) and isinstance(e.date, date)
    ]
    events += _medication_progressions(record.medications or [])
    events += _condition_progressions(record, therapy_starts)
    events += m_protein_progressions(record.m_protein or [], therapy_starts)
    events += flc_progressions(getattr(record, "flc", None) or [], record.m_protein or [], therapy_starts)
    # A statement known by one date only (effectiveDateTime) dates the start of the drug, not its
    # stop: a "stopped for progression" on it says the drug failed (refractory), not when.
    point_starts = {
        (m.source, m.start)
        for m in record.medications or []
        if isinstance(m, MedicationUse) and m.kind == "statement" and m.start is not None and m.start == m.end
    }
    seen: set[tuple[date, str, str]] = set()
    unique: list[ProgressionEvent] = []
    for e in sorted(events, key=lambda e: (e.date, e.kind, e.source)):
        key = (e.date, e.kind, e.source)
        if e.kind == "medication-status-reason" and (e.source, e.date) in point_starts:
            continue
        if key not in seen:
            seen.add(key)
            unique.append(e)
    return unique


def episodes(events: list[ProgressionEvent]) -> list[list[ProgressionEvent]]:
    """Group events into relapse episodes (chained within EPISODE_WINDOW_DAYS of the first)."""
    out: list[list[ProgressionEvent]] = []
    for e in sorted(events, key=lambda e: e.date):
        if out and e.date - out[-1][0].date <= timedelta(days=EPISODE_WINDOW_DAYS):
            out[-1].append(e)
        else:
            out.append([e])
    return out
