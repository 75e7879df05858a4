"""Progression evidence: charted events plus IMWG progressive disease computed from the labs
(serum M-protein; urine M-protein; free light chains when neither is measurable).

Why a separate module: lines, refractoriness, response duration and salvage ASCT all hang on
the same progression dates, so they are gathered once, de-duplicated into *episodes* and shared.

Sources: IMWG response criteria (Kumar S et al., Lancet Oncol 2016;17:e328, via
docs/reference/terminology.md §4): PD = serum M-protein rise ≥ 25 % from the lowest value
AND ≥ 0.5 g/dL absolute (≥ 1 g/dL when the nadir is ≥ 5 g/dL), confirmed on two consecutive
assessments. Urine: ≥ 25 % and ≥ 200 mg/24 h. Without measurable serum/urine M-protein: the
difference between involved and uninvolved free light chain (dFLC), ≥ 25 % and > 10 mg/dL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from cds_service.record.labs import flc_chain
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


FLC_ABS_MG_L = 100.0  # IMWG: absolute increase of the dFLC must be > 10 mg/dL (100 mg/L)
URINE_ABS_MG_24H = 200.0  # IMWG: urine M-protein increase ≥ 25 % and ≥ 200 mg/24 h
MEASURABLE_SERUM_G_DL = 1.0  # IMWG measurable disease: serum M-protein ≥ 1 g/dL
MEASURABLE_URINE_MG_24H = 200.0  # ... or urine M-protein ≥ 200 mg/24 h
PCT_RISE = 0.25


def _series_progressions(series: list[tuple[date, float, str]], qualifies: Callable[[float, float], bool],
                         starts: list[date], describe: Callable[[float, float, str], str],
                         kind: str) -> list[ProgressionEvent]:
    """PD episodes of one marker series (date, value, source), with the M-protein confirmation rule:
    the first qualifying value dates the PD when the next value also qualifies, when new therapy
    started before the next value, or when it is the last value (then "not yet confirmed")."""
    events: list[ProgressionEvent] = []
    nadir: float | None = None
    in_pd = False
    prev: float | None = None
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
                prev = val  # transient rise, not confirmed
                continue
            note = ("single value, not yet confirmed" if nxt is None else
                    "confirmed by the next value" if qualifies(nxt[1], nadir) else
                    "new therapy started before the next value")
            events.append(ProgressionEvent(date=d, source=src, kind=kind, detail=describe(val, nadir, note)))
            in_pd, prev = True, val
            continue
        nadir = val if nadir is None else min(nadir, val)
        prev = val
    return events


def _serum_measurable(m_protein: list[LabValue] | None) -> bool:
    serum = [g for v in m_protein or [] if isinstance(v, LabValue) and (g := _to_g_dl(v)) is not None]
    return bool(serum) and max(serum) >= MEASURABLE_SERUM_G_DL


def _urine_series(urine: list[LabValue] | None) -> list[tuple[date, float, str]]:
    out = [(v.date, float(v.value), v.source) for v in urine or []
           if isinstance(v, LabValue) and isinstance(v.date, date) and isinstance(v.value, int | float)
           and not isinstance(v.value, bool) and v.value == v.value and v.value >= 0]
    return sorted(out, key=lambda t: t[0])


def _urine_measurable(urine: list[LabValue] | None) -> bool:
    return any(v >= MEASURABLE_URINE_MG_24H for _, v, _ in _urine_series(urine))


def urine_progressions(urine: list[LabValue] | None, therapy_starts: list[date] | None = None) -> list[ProgressionEvent]:
    """IMWG PD from the 24-h urine M-protein (mg/24 h): rise ≥ 25 % from the nadir and ≥ 200 mg/24 h."""
    def qualifies(val: float, nadir: float) -> bool:
        rise = val - nadir
        return rise >= URINE_ABS_MG_24H - 1e-9 and (nadir <= 0 or rise >= PCT_RISE * nadir - 1e-9)

    return _series_progressions(
        _urine_series(urine), qualifies, sorted(therapy_starts or []),
        lambda v, n, note: f"IMWG PD: urine M-protein {v:.0f} mg/24 h from nadir {n:.0f} mg/24 h ({note})", "urine")


def _flc_by_day(flc: list[LabValue]) -> dict[date, dict[str, tuple[float, str]]]:
    by_day: dict[date, dict[str, tuple[float, str]]] = {}
    for v in flc or []:
        chain = flc_chain(v)
        if (chain and isinstance(v, LabValue) and isinstance(v.date, date) and isinstance(v.value, int | float)
                and not isinstance(v.value, bool) and v.value == v.value and v.value >= 0):
            by_day.setdefault(v.date, {})[chain] = (float(v.value), v.source)
    return by_day


def _flc_applies(m_protein: list[LabValue] | None, urine: list[LabValue] | None) -> bool:
    """IMWG: FLC criteria are for patients without measurable serum and urine M-protein."""
    return not _serum_measurable(m_protein) and not _urine_measurable(urine)


def flc_progressions(
    flc: list[LabValue], m_protein: list[LabValue] | None = None, therapy_starts: list[date] | None = None,
    urine: list[LabValue] | None = None,
) -> list[ProgressionEvent]:
    """IMWG PD from serum free light chains, only without measurable serum (≥ 1 g/dL) or urine
    (≥ 200 mg/24 h) M-protein: the dFLC (involved minus uninvolved, same-day pairs) rising ≥ 25 %
    from its nadir and by > 100 mg/L (10 mg/dL). The involved chain is the higher one at the pair
    where the two differ most (the disease peak), so a baseline drawn in deep response cannot swap
    it. Confirmation as for M-protein. Without both chains nothing is computed (see flc_gaps)."""
    if not _flc_applies(m_protein, urine):
        return []
    pairs = sorted((d, x) for d, x in _flc_by_day(flc).items() if "kappa" in x and "lambda" in x)
    if len(pairs) < 2:
        return []
    peak = max(pairs, key=lambda p: abs(p[1]["kappa"][0] - p[1]["lambda"][0]))[1]
    inv, unv = ("kappa", "lambda") if peak["kappa"][0] >= peak["lambda"][0] else ("lambda", "kappa")
    series = [(d, x[inv][0] - x[unv][0], x[inv][1]) for d, x in pairs]

    def qualifies(val: float, nadir: float) -> bool:
        rise = val - nadir
        return rise > FLC_ABS_MG_L and (nadir <= 0 or rise >= PCT_RISE * nadir - 1e-9)

    return _series_progressions(
        series, qualifies, sorted(therapy_starts or []),
        lambda v, n, note: f"IMWG PD: dFLC ({inv} involved) {v:.0f} mg/L from nadir {n:.0f} mg/L ({note})", "flc")


_GREEK = {"kappa": "κ", "lambda": "λ"}


def flc_unjudged(record: PatientRecord, as_of: date | None = None) -> str:
    """Short reason FLC progression cannot be judged ("λ missing", "κ missing", "κ and λ never on one
    day"), or "" when it can be (or FLC is not the marker to follow). For one-line summaries."""
    gaps = flc_gaps(record, as_of)
    if not gaps:
        return ""
    if gaps[0].startswith("κ and λ"):
        return "κ and λ never measured on the same day"
    return ("λ" if gaps[0].startswith("κ") else "κ") + " missing"


def flc_gaps(record: PatientRecord, as_of: date | None = None) -> list[str]:
    """What keeps FLC progression from being judged, in words for the card.

    IMWG FLC progression is defined on the difference between involved and uninvolved chain: with
    only κ (or only λ) results, or never both on one day, it cannot be judged — say so, with the
    rise of the one chain when there is one, instead of silently reporting no progression."""
    flc = [v for v in getattr(record, "flc", None) or [] if as_of is None or (isinstance(v, LabValue)
                                                                               and isinstance(v.date, date)
                                                                               and v.date <= as_of)]
    if not flc or not _flc_applies(record.m_protein, getattr(record, "urine_m_protein", None)):
        return []
    by_day = _flc_by_day(flc)
    chains = {c for x in by_day.values() for c in x}
    paired = [d for d, x in by_day.items() if len(x) == 2]
    if len(chains) == 2 and len(paired) >= 2:
        return []
    if len(chains) == 2:
        return ["κ and λ free light chains not measured on the same day at least twice: the IMWG dFLC "
                "(involved − uninvolved) cannot be followed, FLC progression not judged"]
    (only,) = chains or {"kappa"}
    other = "lambda" if only == "kappa" else "kappa"
    series = sorted((d, x[only][0]) for d, x in by_day.items() if only in x)
    msg = (f"{_GREEK[only]} free light chain results without {_GREEK[other]}: IMWG FLC progression needs the "
           f"difference of involved and uninvolved chain (dFLC), so it cannot be judged from FLC")
    nadir_d, nadir = series[0]
    for d, v in series[1:]:
        if v - nadir > FLC_ABS_MG_L and (nadir <= 0 or v - nadir >= PCT_RISE * nadir):
            return [f"{_GREEK[only]} free light chain rose from {nadir:.0f} mg/L ({nadir_d.isoformat()}) to {v:.0f} mg/L "
                    f"({d.isoformat()}), but no {_GREEK[other]} result: IMWG FLC progression needs the dFLC "
                    f"(involved − uninvolved), so it cannot be judged; measure {_GREEK[other]} FLC"]
        if v < nadir:
            nadir_d, nadir = d, v
    return [msg]


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
    urine = getattr(record, "urine_m_protein", None) or []
    events += flc_progressions(getattr(record, "flc", None) or [], record.m_protein or [], therapy_starts, urine)
    events += urine_progressions(urine, therapy_starts)
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
