"""FHIR resource dicts → PatientRecord: what the clinical core reads instead of raw FHIR.

`build_record` reads whatever the EHR sent (R4/R4B, R5 shapes, DSTU2 MedicationOrder), one
resource at a time, and never raises: a resource that cannot be read adds a short note to
`record.notes` (resource type and position only, never patient data) and the rest still counts.
Cost is linear in the number of resources: one pass to index Medications, one pass to read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from cds_service.knowledge.loader import Knowledge
from cds_service.record.catalogs import (
    classify_reason,
    coded,
    condition_index,
    norm_code,
    observation_index,
    procedure_index,
    words_re,
)
from cds_service.record.drugs import (
    DrugMatch,
    is_high_dose_steroid,
    resolve_drug,
    route_from_text,
    route_of_concept,
)
from cds_service.record.fhirutil import (
    JsonMemo,
    as_dict,
    as_float,
    as_list,
    as_str,
    concept_texts,
    first_date,
    parse_date,
    period_bounds,
    ref_string,
    status_code,
)
from cds_service.record.fish import abnormalities_in, fish_index, is_fish_text
from cds_service.record.fish_resources import read_fish_observation, read_report, read_variant, value_texts
from cds_service.record.labs import LAB_KINDS, lab_kind_of_text, read_lab
from cds_service.record.model import (
    ConditionFact,
    LabValue,
    MedicationUse,
    PatientRecord,
    ProgressionEvent,
    TransplantEvent,
)

MED_TYPES = ("MedicationStatement", "MedicationRequest", "MedicationAdministration", "MedicationOrder",
             "MedicationDispense")
_SKIP_STATUS = {"entered-in-error"}
_NOT_GIVEN_REQUEST = {"cancelled", "draft", "entered-in-error"}
_ONGOING_STATEMENT = {"active", "on-hold", "intended"}
_ONGOING_REQUEST = {"active", "on-hold"}
_REF_ID_RE = re.compile(r"Medication/([^/]+)")
_LAB_ROLES = frozenset(LAB_KINDS)
_DURATION_DAYS = {"d": 1, "day": 1, "wk": 7, "week": 7, "mo": 30, "month": 30, "a": 365, "year": 365}


# ------------------------------------------------------------------------------ Medication lookup


class MedicationLookup:
    """Medication resources of the request by every name a reference may use."""

    def __init__(self) -> None:
        self.by_key: dict[str, dict] = {}

    def add(self, res: dict, full_url: str = "") -> None:
        rid = as_str(res.get("id"))
        if rid:
            self.by_key.setdefault(f"Medication/{rid}", res)
            self.by_key.setdefault(rid, res)
        if full_url:
            self.by_key.setdefault(full_url, res)

    def find(self, ref: str, container: dict) -> dict | None:
        if not ref:
            return None
        if ref.startswith("#"):
            for c in as_list(container.get("contained")):
                if isinstance(c, dict) and as_str(c.get("id")) == ref[1:]:
                    return c
            return None
        hit = self.by_key.get(ref)
        if hit is not None:
            return hit
        m = _REF_ID_RE.search(ref)
        if m:
            hit = self.by_key.get(f"Medication/{m.group(1)}")
            if hit is not None:
                return hit
        if ref.startswith("urn:uuid:"):
            return self.by_key.get(ref[9:])
        tail = ref.rstrip("/").rsplit("/", 1)[-1]
        return self.by_key.get(tail)


def medication_of(res: dict, meds: MedicationLookup, knowledge: Knowledge) -> DrugMatch:
    """The drug of a medication record: concept, (contained) Medication reference, or R5 CodeableReference."""
    cc = res.get("medicationCodeableConcept")
    ref = res.get("medicationReference")
    r5 = res.get("medication")
    if isinstance(r5, dict):
        if isinstance(r5.get("concept"), dict):
            cc = cc or r5["concept"]
        if isinstance(r5.get("reference"), dict):
            ref = ref or r5["reference"]
        elif "coding" in r5 or "text" in r5:  # a bare concept under "medication"
            cc = cc or r5
    match = DrugMatch()
    if isinstance(cc, dict | str):
        match = resolve_drug(cc, knowledge)
    if isinstance(ref, dict) and not match.agents:
        target = meds.find(ref_string(ref), res)
        if target is not None:
            m2 = resolve_drug(target, knowledge)
            if m2.agents or m2.category or not match.display:
                match = m2
        if not match.agents and not match.category and ref.get("display"):
            m3 = resolve_drug({"text": as_str(ref.get("display"))}, knowledge)
            if m3.agents or m3.category or not match.display:
                match = m3
    return match


# ---------------------------------------------------------------------------------- medications


def _dosages(res: dict) -> list[dict]:
    out = [d for d in as_list(res.get("dosageInstruction")) if isinstance(d, dict)]
    out += [d for d in as_list(res.get("dosage")) if isinstance(d, dict)]
    return out


def _route(res: dict, drug: DrugMatch, knowledge: Knowledge, dosages: list[dict] | None = None) -> str | None:
    dosages = _dosages(res) if dosages is None else dosages
    for d in dosages:
        for key in ("route", "method"):
            r = route_of_concept(d.get(key), knowledge)
            if r:
                return r
    for d in dosages:
        r = route_from_text(as_str(d.get("text")))
        if r:
            return r
    return drug.route


def _dosage_dates(dosages: list[dict]) -> tuple[date | None, date | None]:
    starts: list[date] = []
    ends: list[date] = []
    for d in dosages:
        rep = as_dict(as_dict(d.get("timing")).get("repeat"))
        s, e = period_bounds(rep.get("boundsPeriod"))
        if s:
            starts.append(s)
        if e:
            ends.append(e)
        elif s and rep.get("boundsDuration"):
            dur = as_dict(rep.get("boundsDuration"))
            n = as_float(dur.get("value"))
            days = _DURATION_DAYS.get(as_str(dur.get("code") or dur.get("unit")).lower().rstrip("s"))
            if n and days and 0 < n * days < 3660:
                ends.append(s + timedelta(days=int(n * days) - 1))
        for ev in as_list(as_dict(d.get("timing")).get("event")):
            dd = parse_date(ev)
            if dd:
                starts.append(dd)
                ends.append(dd)
    return (min(starts) if starts else None), (max(ends) if ends else None)


def _termination_extensions(res: dict) -> list[Any]:
    """Stop reasons carried in an extension (mCODE STU1/2 treatment-termination-reason and look-alikes)."""
    out: list[Any] = []
    for ext in as_list(res.get("extension")):
        ext = as_dict(ext)
        url = as_str(ext.get("url")).lower().replace("-", "").replace("_", "")
        if "reason" in url and ("termination" in url or "stop" in url or "discontinu" in url or "statusreason" in url):
            for key in ("valueCodeableConcept", "valueString", "valueCoding"):
                if ext.get(key):
                    out.append(ext[key])
    return out


def _notes_text(res: dict) -> str:
    return " ".join(as_str(as_dict(n).get("text")) for n in as_list(res.get("note")))


def read_medication(res: dict, rtype: str, meds: MedicationLookup, knowledge: Knowledge, as_of: date) -> list[MedicationUse]:
    """One MedicationUse per agent of the record (a combination product gives several)."""
    status = status_code(res.get("status"))
    if status in _SKIP_STATUS:
        return []
    if res.get("doNotPerform") is True or res.get("wasNotTaken") is True or res.get("wasNotGiven") is True:
        return []
    if as_str(res.get("taken")).lower() in ("n", "no"):  # STU3 MedicationStatement.taken
        return []
    intent = status_code(res.get("intent"))
    source = f"{rtype}/{as_str(res.get('id')) or '?'}"
    dosages = _dosages(res)
    start: date | None = None
    end: date | None = None
    asserted: date | None = None
    ongoing = False
    kind: str
    if rtype == "MedicationStatement":
        if status in ("not-taken",):
            return []
        kind = "statement"
        start, end, asserted, ongoing = _statement_dates(res, status, as_of)
    elif rtype in ("MedicationRequest", "MedicationOrder"):
        if status in _NOT_GIVEN_REQUEST:
            return []
        if intent in ("proposal", "plan") and status not in ("completed", "stopped"):
            return []
        kind = "request"
        ds, de = _dosage_dates(dosages) if dosages else (None, None)
        start = ds or parse_date(res.get("authoredOn")) or parse_date(res.get("dateWritten"))
        end = de or parse_date(res.get("dateEnded"), end=True)
        if start is None or (end is None and status in ("completed", "stopped")):
            vs, ve = period_bounds(as_dict(res.get("dispenseRequest")).get("validityPeriod"))
            start = start or vs
            if end is None and status in ("completed", "stopped"):
                end = ve or start
        ongoing = status in _ONGOING_REQUEST and (end is None or end >= as_of)
    elif rtype == "MedicationDispense":
        if status in ("cancelled", "declined", "entered-in-error", "preparation"):
            return []
        kind = "request"  # a supply: from hand-over for the days supplied
        start = first_date(res.get("whenHandedOver"), res.get("whenPrepared"))
        days = as_float(as_dict(res.get("daysSupply")).get("value"))
        end = start + timedelta(days=max(0, int(days)) - 1) if start and days and 0 < days < 400 else start
    else:  # MedicationAdministration (one dose or one infusion)
        if status in ("not-done",):
            return []
        kind = "administration"
        ps, pe = period_bounds(res.get("effectivePeriod") or res.get("effectiveTimePeriod"))
        dt = first_date(res.get("effectiveDateTime"), res.get("effectiveTimeDateTime"), res.get("occurenceDateTime"),
                        res.get("occurrenceDateTime"))
        start = ps or dt
        end = pe or dt or ps
        ongoing = status == "in-progress"
    if start and end and end < start:
        end = start
    drug = medication_of(res, meds, knowledge)

    # Why it stopped: statusReason / reasonEnded first (any reason counts), then reasonCode and
    # notes only when they state progression, toxicity or completion.
    reason_concepts = (as_list(res.get("statusReason")) + as_list(res.get("reasonEnded"))
                       + as_list(res.get("statusReasonCodeableConcept")) + _termination_extensions(res))
    stop_reason, stop_text = (None, "")
    if reason_concepts:
        stop_reason, stop_text = classify_reason(reason_concepts, knowledge, allow_other=True)
    stopped = status in ("stopped", "completed", "on-hold") or (end is not None and end < as_of and not ongoing)
    if stop_reason is None and stopped:
        # reasonCode is why the drug was given ("Relapsed multiple myeloma" for a salvage regimen):
        # never a stop reason when it names a disease; only a plain stop wording counts.
        extra: list[Any] = [c for c in as_list(res.get("reasonCode")) + as_list(res.get("reasonForUseCodeableConcept"))
                            if isinstance(c, dict) and not _condition_kinds(c, knowledge)[0]]
        note = _notes_text(res)
        if note:
            extra.append(note)
        if extra:
            cat, txt = classify_reason(extra, knowledge, allow_other=False)
            if cat:
                stop_reason, stop_text = cat, txt
    # A completed statement/request is a finished course (brief); a completed single dose is not.
    if stop_reason is None and status == "completed" and kind != "administration":
        stop_reason = "completed"
    stop_reason = stop_reason or "unknown"
    route = _route(res, drug, knowledge, dosages)
    base = dict(
        source=source,
        kind=kind,
        display=drug.display,
        category=drug.category,
        status=status or None,
        start=start,
        end=None if ongoing and (end is None or end >= as_of) else end,
        ongoing=ongoing,
        stop_reason=stop_reason,
        stop_reason_text=stop_text or None,
        route=route,
        asserted=asserted,
    )
    if not drug.agents:
        return [MedicationUse(agent=None, **base)]
    out = []
    for agent in drug.agents:
        hd = is_high_dose_steroid([agent], dosages, drug.display, knowledge) if agent in ("dexamethasone", "prednisone") else False
        out.append(MedicationUse(agent=agent, high_dose_steroid=hd, **base))
    return out


def _statement_dates(res: dict, status: str, as_of: date) -> tuple[date | None, date | None, date | None, bool]:
    """(start, end, asserted, ongoing) of a MedicationStatement.

    Only effective[x] dates the use. Without a usable start (no effective[x], or an invalid date
    such as "2021-02-30"), `dateAsserted` is kept apart in `asserted`: it says when the statement
    was made, not when the drug was started, so it may place the record in a line but never
    opens one (clinical/courses.py, lines.py).
    """
    ps, pe = period_bounds(res.get("effectivePeriod"))
    dt = parse_date(res.get("effectiveDateTime"))
    start = ps or dt
    end = pe
    if end is None and dt and status not in _ONGOING_STATEMENT:
        end = dt
    asserted = parse_date(res.get("dateAsserted")) if start is None else None
    ongoing = status in _ONGOING_STATEMENT and (end is None or end >= as_of)
    if start is None and end is None:
        ongoing = False  # current use is judged from the assertion date in clinical/courses.py
    if status == "recorded" and ps is not None and pe is None:  # R5: an open period is current use
        ongoing = True
    return start, end, asserted, ongoing


def medication_progression(res: dict, uses: list[MedicationUse]) -> ProgressionEvent | None:
    """A stop for progression is progression evidence on the stop date."""
    for u in uses:
        if u.stop_reason != "progression":
            continue
        when = u.end or parse_date(res.get("dateAsserted")) or parse_date(res.get("dateEnded"))
        if when is None:
            return None
        return ProgressionEvent(date=when, source=u.source, kind="medication-status-reason",
                                detail=(u.stop_reason_text or "")[:200])
    return None


# ----------------------------------------------------------------------------------- conditions


def read_condition(res: dict, knowledge: Knowledge, record: PatientRecord) -> None:
    ver = status_code(res.get("verificationStatus"))
    if ver in ("entered-in-error", "refuted", "differential", "unconfirmed"):
        return
    idx = condition_index(knowledge)
    source = f"Condition/{as_str(res.get('id')) or '?'}"
    code = res.get("code")
    clinical = status_code(res.get("clinicalStatus"))
    onset = first_date(res.get("onsetDateTime"), as_dict(res.get("onsetPeriod")).get("start"), res.get("onsetString"))
    recorded = first_date(res.get("recordedDate"), res.get("dateRecorded"), res.get("assertedDate"))
    kinds, code_str, transplant = _condition_kinds(code, knowledge)
    if transplant is not None:
        record.transplants.append(TransplantEvent(date=None, kind=transplant, source=source))  # type: ignore[arg-type]
    if not kinds:
        return
    relapse_status = clinical in ("relapse", "recurrence")
    for kind, flags in kinds.items():
        relapse = bool(flags.get("relapse")) or relapse_status
        remission = bool(flags.get("remission")) or clinical == "remission"
        active = clinical not in ("inactive", "remission", "resolved")
        record.conditions.append(ConditionFact(kind=kind, source=source, onset=onset or recorded, relapse=relapse,
                                               remission=remission, active=active, code=code_str,
                                               recorded=recorded))
        if relapse and kind in idx.myeloma_kinds:
            when = onset or recorded
            if when is not None:
                record.progressions.append(ProgressionEvent(date=when, source=source, kind="condition-relapse",
                                                            detail=f"{kind} in relapse"))
            else:
                record.notes.append("A myeloma Condition in relapse has no date; not used as progression.")


def _condition_kinds(code: Any, knowledge: Knowledge) -> tuple[dict[str, dict], str, str | None]:
    """Kinds (with relapse/remission flags) and transplant status of a Condition.code; memoised."""
    cache: dict[str, tuple[dict[str, dict], str, str | None]] = knowledge.index("record.condition_cache", lambda _k: {})
    key = repr(code)
    hit = cache.get(key)
    if hit is not None:
        return hit
    idx = condition_index(knowledge)
    texts = concept_texts(code)
    text = " | ".join(texts)
    excluded = bool(idx.exclude is not None and text and idx.exclude.search(text))

    kinds: dict[str, dict] = {}
    code_str = ""
    for ck in coded(code):
        found = idx.by_code.get(ck)
        if found is None and ck[0] == "icd10" and len(ck[1]) >= 5:
            kind = idx.icd_category.get(ck[1][:4])
            if kind:
                found = (kind, {"relapse": ck[1][4:5] == "2", "remission": ck[1][4:5] == "1"})
        if found:
            kinds.setdefault(found[0], found[1])
            code_str = code_str or ck[1]
    if not kinds and text and not excluded:
        for kind in idx.order:
            pat = idx.text.get(kind)
            if pat is None or not pat.search(text):
                continue
            kex = idx.kind_exclude.get(kind)
            if kex is not None and kex.search(text):
                continue
            if kind in idx.myeloma_kinds and any(k in idx.non_myeloma_blockers for k in kinds):
                continue
            kinds.setdefault(kind, {})
    # Transplant status codes recorded as conditions (Z94.84, history-of situations).
    transplant = None
    pidx = procedure_index(knowledge)
    for k in coded(code):
        p = pidx.by_code.get(k)
        if p is not None:
            transplant = str(p.get("kind", "unknown"))
            break
    out = (kinds, code_str, transplant)
    if len(cache) < 20000 and len(key) < 4000:
        cache[key] = out
    return out


# --------------------------------------------------------------------------------- procedures


def read_procedure(res: dict, knowledge: Knowledge, record: PatientRecord) -> None:
    status = status_code(res.get("status"))
    if status in ("entered-in-error", "not-done", "preparation", "stopped", "cancelled", "aborted"):
        return
    if res.get("notPerformed") is True:  # DSTU2
        return
    source = f"Procedure/{as_str(res.get('id')) or '?'}"
    if _read_car_t_procedure(res, source, knowledge, record):
        return
    kind, dated, agents, display = _procedure_meaning(res.get("code"), res.get("usedCode"), knowledge)
    if kind is None:
        if agents:
            _procedure_as_administration(res, source, agents, display, record)
        return
    when = None
    if dated:
        when = first_date(res.get("performedDateTime"), as_dict(res.get("performedPeriod")).get("start"),
                          res.get("occurrenceDateTime"), as_dict(res.get("occurrencePeriod")).get("start"),
                          res.get("performedString"), as_dict(res.get("performedPeriod")).get("end"))
    record.transplants.append(TransplantEvent(date=when, kind=kind, source=source))  # type: ignore[arg-type]


def _procedure_meaning(code: Any, used: Any, knowledge: Knowledge) -> tuple[str | None, bool, list[str], str]:
    """(transplant kind or None, dated, agents named, display) of a Procedure code; memoised per code."""
    cache: dict[str, tuple[str | None, bool, list[str], str]] = knowledge.index("record.procedure_cache", lambda _k: {})
    key = repr((code, used))
    hit = cache.get(key)
    if hit is not None:
        return hit
    idx = procedure_index(knowledge)
    text = " | ".join(concept_texts(code))
    found = None
    for k in coded(code):
        found = idx.by_code.get(k)
        if found is not None:
            break
    kind: str | None = None
    dated = True
    if found is not None:
        kind = str(found.get("kind", "unknown"))
        dated = bool(found.get("dated", True))
    elif (text and idx.transplant is not None and idx.transplant.search(text)
          and not (idx.exclude is not None and idx.exclude.search(text))):
        kind = "unknown"
    if kind == "unknown" and text:
        if idx.autologous is not None and idx.autologous.search(text):
            kind = "autologous"
        elif idx.allogeneic is not None and idx.allogeneic.search(text):
            kind = "allogeneic"
    agents: list[str] = []
    display = ""
    if kind is None and not (text and idx.transplant is not None and idx.transplant.search(text)):
        # A Procedure that names an agent ("Carvykti infusion", "Administration of daratumumab") is a dose.
        for c in [code, *as_list(used)]:
            if isinstance(c, dict):
                m = resolve_drug(c, knowledge)
                display = display or m.display
                agents.extend(a for a in m.agents if a not in agents)
    out = (kind, dated, agents, display)
    if len(cache) < 20000 and len(key) < 4000:
        cache[key] = out
    return out


# A CAR-T infusion whose product the record does not name: BCMA-directed when the words say so,
# otherwise target unknown (clinical/model.py TCR_AGENTS knows both names).
CAR_T_BCMA_UNSPECIFIED = "bcma-car-t-unspecified"
CAR_T_UNSPECIFIED = "car-t-unspecified"
_CAR_T_PRODUCTS = ("ciltacabtagene-autoleucel", "idecabtagene-vicleucel")


@dataclass
class CarTIndex:
    """mappings/procedures.yaml `car_t`: infusion codes (with the product where the code names it) and words."""

    by_code: dict[tuple[str, str], str | None]
    text: re.Pattern[str] | None
    exclude: re.Pattern[str] | None
    bcma: re.Pattern[str] | None
    collection: re.Pattern[str] | None


def _build_car_t_index(knowledge: Knowledge) -> CarTIndex:
    doc = as_dict(as_dict(knowledge.mappings.get("procedures")).get("car_t"))
    by_code = {norm_code(str(c["system"]), str(c["code"])): (str(c["agent"]) if c.get("agent") else None)
               for c in as_list(doc.get("codes")) if isinstance(c, dict)}
    return CarTIndex(by_code=by_code, text=words_re(as_list(doc.get("text"))),
                     exclude=words_re(as_list(doc.get("exclude"))), bcma=words_re(as_list(doc.get("bcma"))),
                     collection=words_re(as_list(doc.get("collection"))))


def _read_car_t_procedure(res: dict, source: str, knowledge: Knowledge, record: PatientRecord) -> bool:
    """A CAR-T infusion recorded as a Procedure → one administration of the product (True when handled).

    Recognised by a CAR-T procedure code, by CAR-T words in the code text, or by a CAR-T product
    named in code / usedCode. The product: the code's own product, else a product named in the
    procedure (brand or INN), else an unnamed CAR-T (BCMA-directed only when the text says so).
    A medication record of the same infusion later supplies the product (clinical/courses.py).
    """
    idx: CarTIndex = knowledge.index("record.car_t", _build_car_t_index)
    code, used = res.get("code"), res.get("usedCode")
    texts = concept_texts(code) + [t for u in as_list(used) for t in concept_texts(u)]
    text = " | ".join(texts)
    coded_agent: str | None = None
    by_code = False
    for k in coded(code):
        if k in idx.by_code:
            by_code = True
            coded_agent = coded_agent or idx.by_code[k]
    named: list[str] = []
    for c in [code, *as_list(used)]:
        if isinstance(c, dict):
            named += [a for a in resolve_drug(c, knowledge).agents if a in _CAR_T_PRODUCTS and a not in named]
    by_text = bool(text and idx.text is not None and idx.text.search(text))
    if not (by_code or by_text or named):
        return False
    start, end = period_bounds(res.get("performedPeriod") or res.get("occurrencePeriod"))
    when = first_date(res.get("performedDateTime"), res.get("occurrenceDateTime"), res.get("performedString")) or start
    if text and idx.exclude is not None and idx.exclude.search(text) and not by_code:
        # apheresis, referral, CRS...: a CAR-T step, not the infusion (and not a transplant); the
        # T-cell collection dates the start of bridging
        if when is not None and idx.collection is not None and idx.collection.search(text):
            record.car_t_collections.append(when)
        return True
    agent = coded_agent or (named[0] if named else None)
    if agent is None:
        agent = CAR_T_BCMA_UNSPECIFIED if (text and idx.bcma is not None and idx.bcma.search(text)) else CAR_T_UNSPECIFIED
    if when is None:
        record.notes.append("A CAR-T infusion Procedure has no date; it cannot be placed in a line.")
        return True
    record.medications.append(MedicationUse(source=source, kind="administration", display=text[:200] or "CAR-T infusion",
                                            agent=agent, status=status_code(res.get("status")) or None,
                                            start=when, end=when))
    return True


def _procedure_as_administration(res: dict, source: str, agents: list[str], display: str, record: PatientRecord) -> None:
    start, end = period_bounds(res.get("performedPeriod") or res.get("occurrencePeriod"))
    when = first_date(res.get("performedDateTime"), res.get("occurrenceDateTime"), res.get("performedString")) or start
    if when is None:
        return
    for agent in agents:
        record.medications.append(MedicationUse(source=source, kind="administration", display=display, agent=agent,
                                                status=status_code(res.get("status")) or None, start=when,
                                                end=end or when))


# ------------------------------------------------------------------------------- observations


def _obs_date(res: dict) -> date | None:
    when = res.get("effectiveDateTime")
    if when.__class__ is str:  # the usual case: one parse, no other lookups
        parsed = parse_date(when)
        if parsed is not None:
            return parsed
    return first_date(res.get("effectiveDateTime"), as_dict(res.get("effectivePeriod")).get("start"),
                      res.get("effectiveInstant"), res.get("issued"), as_dict(res.get("effectivePeriod")).get("end"))


def _m_protein_value(res: dict) -> tuple[float | None, str]:
    """g/dL (converted from g/L, mg/dL), or None with the reason."""
    q = as_dict(res.get("valueQuantity"))
    if q:
        v = as_float(q.get("value"))
        unit = (as_str(q.get("code")) or as_str(q.get("unit"))).strip()
    else:
        s = as_str(res.get("valueString"))
        if s and re.search(r"\b(not\s+detected|none\s+detected|negative|absent|no\s+m[\s-]?spike|undetectable)\b", s, re.I):
            return 0.0, ""
        v = as_float(s) if s else as_float(res.get("valueInteger"))
        m = re.search(r"(g/dl|g/l|mg/dl|mg/l)", s, re.I) if s else None
        unit = m.group(1) if m else ""
    if v is None or v < 0:
        return None, "no numeric value"
    u = unit.lower().replace(" ", "")
    if u in ("g/dl", "gm/dl", "g/100ml"):
        return v, ""
    if u == "g/l":
        return v / 10.0, ""
    if u == "mg/dl":
        return v / 1000.0, ""
    if u == "mg/l":
        return v / 10000.0, ""
    if u == "" and v < 15:
        return v, ""
    return None, f"unit '{unit[:20]}' not understood"


def _ecog_value(res: dict, knowledge: Knowledge) -> float | None:
    v = res.get("valueInteger")
    if isinstance(v, int) and not isinstance(v, bool):
        return float(v) if 0 <= v <= 5 else None
    q = as_dict(res.get("valueQuantity"))
    if q:
        f = as_float(q.get("value"))
        return f if f is not None and 0 <= f <= 5 else None
    texts = value_texts(res)
    for c in as_list(as_dict(res.get("valueCodeableConcept")).get("coding")):
        code = as_str(as_dict(c).get("code"))
        if re.fullmatch(r"[0-5]", code):
            return float(code)
    for t in texts:
        m = re.search(r"(?<![\d.])([0-5])(?![\d.%])", t)
        if m:
            return float(m.group(1))
    idx = observation_index(knowledge)
    for t in texts:
        for score, pat in idx.ecog_answers:
            if pat.search(t):
                return score
    return None


# Lab codes, methods and categories repeat on every result of a chart: read each once (JsonMemo).


@dataclass(frozen=True)
class _CodePlan:
    """What an Observation's code says it is: the branch of read_observation, decided once per code."""

    roles: frozenset[str]
    branch: str  # disease-status | m-protein | ecog | genetic-variant | lab | other
    code_text: str
    code_fish: bool  # the code names a FISH study
    code_abnormality: bool  # the code names an abnormality ("TP53 deletion")
    lab: str | None = None  # flc-kappa | flc-lambda | b2m | creatinine | urine-m-protein (record/labs.py)


def _plan_code(code: Any, knowledge: Knowledge) -> _CodePlan:
    idx = observation_index(knowledge)
    keys = coded(code)
    roles = frozenset(idx.role_by_code[k] for k in keys if k in idx.role_by_code)
    code_text = " | ".join(concept_texts(code))
    lab: str | None = None
    if "disease-status" in roles or (not roles and idx.response_code is not None and code_text
                                     and idx.response_code.search(code_text)):
        branch = "disease-status"
    elif "m-protein" in roles or (not roles and idx.m_protein_code is not None and code_text
                                  and idx.m_protein_code.search(code_text)
                                  and not (idx.m_protein_exclude and idx.m_protein_exclude.search(code_text))):
        branch = "m-protein"
    elif "ecog" in roles or (not roles and idx.ecog_code is not None and code_text and idx.ecog_code.search(code_text)
                             and not re.search(r"karnofsky", code_text, re.I)):
        branch = "ecog"
    elif "genetic-variant" in roles:
        branch = "genetic-variant"
    elif roles & _LAB_ROLES:
        branch = "lab"
        lab = next(r for r in LAB_KINDS if r in roles)
    elif not roles and (lab := lab_kind_of_text(code_text, knowledge)) is not None:
        branch = "lab"
    else:
        branch = "other"
    return _CodePlan(roles=roles, branch=branch, code_text=code_text, lab=lab,
                     code_fish=bool(is_fish_text(code_text, knowledge)),
                     code_abnormality=bool(code_text and abnormalities_in(code_text, fish_index(knowledge))))


def _is_fish_method(method: Any, knowledge: Knowledge) -> bool:
    """Observation.method is FISH (a `fish-method` value in mappings/observations.yaml)."""
    meaning = observation_index(knowledge).value_meaning
    return any(meaning.get(k) == "fish-method" for k in coded(method))


_PLANS: dict[str, tuple[JsonMemo[_CodePlan], JsonMemo[bool], JsonMemo[bool]]] = {}


def _plans(knowledge: Knowledge) -> tuple[JsonMemo[_CodePlan], JsonMemo[bool], JsonMemo[bool]]:
    """Per knowledge release: code → plan, category → names a FISH study, method → is FISH."""
    plans = _PLANS.get(knowledge.digest)
    if plans is None:
        plans = _PLANS[knowledge.digest] = (
            JsonMemo(lambda code: _plan_code(code, knowledge)),
            JsonMemo(lambda category: bool(is_fish_text(" ".join(concept_texts(category)), knowledge))),
            JsonMemo(lambda method: _is_fish_method(method, knowledge)),
        )
    return plans


def read_observation(res: dict, knowledge: Knowledge, record: PatientRecord) -> None:
    status = status_code(res.get("status"))
    if status in ("entered-in-error", "cancelled"):
        return
    code_plans, category_fish, fish_method = _plans(knowledge)
    plan = code_plans(res.get("code"))
    branch, roles, code_text = plan.branch, plan.roles, plan.code_text
    if branch == "other":
        has_components = bool(res.get("component"))
        fish = plan.code_fish or fish_method(res.get("method")) or category_fish(res.get("category"))
        if not has_components and not fish and not plan.code_abnormality:
            return  # a lab or vital sign the clinical core does not read: nothing more to look at
    idx = observation_index(knowledge)
    source = f"Observation/{as_str(res.get('id')) or '?'}"
    when = _obs_date(res)

    if branch == "disease-status":
        if _says_progression(res, idx) and when is not None:
            kind = "disease-status" if "disease-status" in roles else "response-pd"
            record.progressions.append(ProgressionEvent(date=when, source=source, kind=kind,
                                                        detail="; ".join(value_texts(res))[:200]))
        return
    if branch == "m-protein":
        if when is None:
            return
        val, why = _m_protein_value(res)
        if val is None:
            record.notes.append(f"M-protein value skipped: {why}.")
            return
        record.m_protein.append(LabValue(date=when, value=val, unit="g/dL", source=source,
                                         code="33358-3" if "m-protein" in roles else ""))
        return
    if branch == "ecog":
        v = _ecog_value(res, knowledge)
        if v is not None and when is not None:
            record.ecog.append(LabValue(date=when, value=v, unit="{score}", source=source,
                                        code="89247-1" if "ecog" in roles else ""))
        return
    if branch == "genetic-variant":
        read_variant(res, knowledge, record, source, when)
        return
    if branch == "lab" and plan.lab is not None:
        # LOINC-coded or local-code-with-wording, any usual unit (record/labs.py); FLC values carry
        # their chain ("kappa" / "lambda") or their LOINC
        loinc = {"flc-kappa": "36916-5", "flc-lambda": "33944-0"}.get(plan.lab, "") if plan.lab in roles else ""
        chain = {"flc-kappa": "kappa", "flc-lambda": "lambda"}.get(plan.lab, "")
        read_lab(res, plan.lab, record, source, when, loinc or chain)
        return
    if _m_protein_components(res, idx, record, source, when):
        return
    if fish:
        read_fish_observation(res, knowledge, record, source, when, code_text)
    elif plan.code_abnormality:
        # "TP53 deletion" / "IGH/CCND1 t(11;14)" with a Detected / Not detected value: a FISH result
        # whose code does not say FISH. Only a stated result counts (parse_fish_text).
        read_fish_observation(res, knowledge, record, source, when, code_text)


def _m_protein_components(res: dict, idx: Any, record: PatientRecord, source: str, when: date | None) -> bool:
    """An SPEP panel Observation carrying the M-spike as a component (33358-3 or its wording)."""
    found = False
    for comp in as_list(res.get("component")):
        comp = as_dict(comp)
        ccode = comp.get("code")
        is_m = coded_m = any(idx.role_by_code.get(k) == "m-protein" for k in coded(ccode))
        if not is_m and idx.m_protein_code is not None:
            t = " | ".join(concept_texts(ccode))
            is_m = bool(t and idx.m_protein_code.search(t)
                        and not (idx.m_protein_exclude is not None and idx.m_protein_exclude.search(t)))
        if not is_m or when is None:
            continue
        val, why = _m_protein_value(comp)
        if val is None:
            record.notes.append(f"M-protein value skipped: {why}.")
            continue
        record.m_protein.append(LabValue(date=when, value=val, unit="g/dL", source=source,
                                         code="33358-3" if coded_m else ""))
        found = True
    return found


def _says_progression(res: dict, idx: Any) -> bool:
    for key in coded(res.get("valueCodeableConcept")):
        meaning = idx.value_meaning.get(key)
        if meaning == "progression":
            return True
        if meaning in ("improved", "stable", "undetermined"):
            return False
    text = " | ".join(value_texts(res))
    if not text:
        return False
    if idx.non_progression_value is not None and idx.non_progression_value.search(text):
        return False
    return bool(idx.progression_value is not None and idx.progression_value.search(text))


# ------------------------------------------------------------------------------- entry point


def _dedupe(resources: Any) -> list[dict]:
    out: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for r in as_list(resources):
        if not isinstance(r, dict):
            continue
        rt = r.get("resourceType")
        if rt == "Bundle":  # tolerate a Bundle left packed
            for e in as_list(r.get("entry")):
                inner = as_dict(e).get("resource")
                if isinstance(inner, dict):
                    rt, rid = as_str(inner.get("resourceType")), as_str(inner.get("id"))
                    if rid and (rt, rid) in seen:
                        continue
                    if rid:
                        seen.add((rt, rid))
                    out.append(inner)
            continue
        rid = r.get("id")
        if rid.__class__ is not str:  # the usual case is a string id: no conversion
            rid = as_str(rid)
        if rid:
            key = (rt if rt.__class__ is str else as_str(rt), rid)
            if key in seen:
                continue
            seen.add(key)
        out.append(r)
    return out


def build_record(resources: list[dict], as_of: date, knowledge: Knowledge) -> PatientRecord:
    """Read every resource into a PatientRecord. Never raises."""
    record = PatientRecord()
    try:
        items = _dedupe(resources)
    except Exception:  # noqa: BLE001
        record.notes.append("Resources could not be read.")
        return record
    record.resource_count = len(items)
    meds = MedicationLookup()
    for r in items:
        if r.get("resourceType") == "Medication":
            meds.add(r)
    for i, res in enumerate(items):
        rtype = res.get("resourceType")
        if rtype.__class__ is not str:
            rtype = as_str(rtype)
        try:
            if rtype == "Observation":  # most of a chart: tested first
                read_observation(res, knowledge, record)
            elif rtype in MED_TYPES:
                uses = read_medication(res, rtype, meds, knowledge, as_of)
                record.medications.extend(uses)
                ev = medication_progression(res, uses)
                if ev is not None:
                    record.progressions.append(ev)
            elif rtype == "Condition":
                read_condition(res, knowledge, record)
            elif rtype in ("DiagnosticReport", "DocumentReference"):
                read_report(res, knowledge, record)
            elif rtype == "Procedure":
                read_procedure(res, knowledge, record)
            elif rtype == "Patient" and record.patient_id is None:
                record.patient_id = as_str(res.get("id")) or None
                record.birth_date = parse_date(res.get("birthDate"))
                g = as_str(res.get("gender")).strip().lower()
                record.gender = g or None
        except Exception as exc:  # noqa: BLE001 - one unreadable resource must not lose the rest
            record.notes.append(f"{rtype or 'resource'} #{i} could not be read ({type(exc).__name__}).")
    return record
