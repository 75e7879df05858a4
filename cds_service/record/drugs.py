"""Which drug a FHIR medication concept is: agent (CONTRACT name), supportive category, route.

Order of evidence: catalog codes (RxNorm ingredient/product codes, ATC old and new) from
`mappings/agents.yaml`, then names (generic, synonyms, brands) found as whole words in the
displays and text. Regimen abbreviations are never guessed and an unknown code falls back to its
text; a drug that matches nothing is kept with `agents == []` (it still counts for the record).
Indexes are built once per process through `Knowledge.index`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from cds_service.knowledge.loader import Knowledge
from cds_service.record.fhirutil import (
    JsonMemo,
    as_dict,
    as_float,
    as_list,
    as_str,
    codings,
    concept_display,
    concept_texts,
    namespace,
)

ATC_RE = re.compile(r"^[A-Z]\d{2}[A-Z]{2}\d{2}$")

# Route words (dosage route text / coding display, or the drug's own text). Faspro and the
# hyaluronidase co-formulation exist only as subcutaneous daratumumab.
_ROUTE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("sc", re.compile(r"subcut\w*|sub-cut\w*|\bsc\b|\bs\.c\.?|\bsq\b|\bsubq\b|\bs\.q\.?|hypoderm\w*|\bfaspro\b|hyaluronidase", re.I)),
    ("iv", re.compile(r"intravenous\w*|\bi\.?v\.?\b|\bivpb\b|\bivp\b|infusion|\binfuse\w*", re.I)),
    ("oral", re.compile(r"\boral\w*|\bp\.?o\.?\b|by mouth|\bper os\b|\btablet\w*|\bcapsule\w*|\bpill\b|\benteral\b", re.I)),
]


@dataclass
class DrugMatch:
    """What a medication concept is. `agents` in CONTRACT vocabulary, possibly several (a combination)."""

    agents: list[str] = field(default_factory=list)
    category: str | None = None
    display: str = ""
    route: str | None = None  # route implied by the drug itself ("Velcade SC", "Faspro")
    matched_by: str = ""  # "rxnorm" | "atc" | "name" | ""


@dataclass
class DrugIndex:
    rxnorm: dict[str, str]
    atc: dict[str, str]
    name_re: re.Pattern[str] | None
    name_to_agent: dict[str, str]
    supportive_re: re.Pattern[str] | None
    name_to_category: dict[str, str]
    category_exclude: dict[str, re.Pattern[str]]
    agent_class: dict[str, str | None]
    local_form_re: re.Pattern[str] | None
    local_form_agents: frozenset[str]
    steroid_thresholds: dict[str, Any]
    route_codes: dict[tuple[str, str], str]
    cache: dict[tuple, DrugMatch] = field(default_factory=dict)  # same drug concept, same answer
    route_memo: JsonMemo[str | None] | None = None  # route of a Dosage.route concept (they repeat)


def _norm_name(s: str) -> str:
    return re.sub(r"[\s\-/]+", " ", s.strip().lower())


def _alternation(names: list[str]) -> re.Pattern[str] | None:
    """One regex matching any of the names as whole words; spaces, hyphens, slashes interchangeable."""
    uniq = sorted({_norm_name(n) for n in names if n and n.strip()}, key=len, reverse=True)
    if not uniq:
        return None
    parts = [r"[\s\-/]+".join(re.escape(w) for w in n.split(" ")) for n in uniq]
    # Trailing boundary on letters only: "Revlimid10mg" still names lenalidomide.
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(parts) + r")(?![a-z])", re.I)


def build_drug_index(knowledge: Knowledge) -> DrugIndex:
    agents_doc = as_dict(knowledge.mappings.get("agents"))
    rx: dict[str, str] = {}
    atc: dict[str, str] = {}
    name_to_agent: dict[str, str] = {}
    agent_class: dict[str, str | None] = {}
    for a in as_list(agents_doc.get("agents")):
        name = a["name"]
        agent_class[name] = a.get("class")
        for c in as_list(a.get("rxnorm")):
            rx[str(c["code"])] = name
        for c in as_list(a.get("atc")):
            atc[str(c["code"]).upper()] = name
        for n in [*as_list(a.get("synonyms")), *as_list(a.get("brands")), name, name.replace("-", " ")]:
            name_to_agent[_norm_name(n)] = name
    sup = as_dict(knowledge.mappings.get("supportive"))
    name_to_category: dict[str, str] = {}
    category_exclude: dict[str, re.Pattern[str]] = {}
    for cat, body in as_dict(sup.get("categories")).items():
        for n in as_list(as_dict(body).get("names")):
            name_to_category[_norm_name(n)] = cat
        ex = _alternation([str(x) for x in as_list(as_dict(body).get("exclude_text"))])
        if ex is not None:
            category_exclude[cat] = ex
    local_forms = [str(x) for x in as_list(agents_doc.get("local_forms"))]
    return DrugIndex(
        rxnorm=rx,
        atc=atc,
        name_re=_alternation(list(name_to_agent)),
        name_to_agent=name_to_agent,
        supportive_re=_alternation(list(name_to_category)),
        name_to_category=name_to_category,
        category_exclude=category_exclude,
        agent_class=agent_class,
        local_form_re=_alternation(local_forms),
        local_form_agents=frozenset(as_list(agents_doc.get("local_form_agents"))),
        steroid_thresholds=as_dict(sup.get("high_dose_steroid")),
        route_codes={(str(c["system"]), str(c["code"])): str(c["route"]) for c in as_list(agents_doc.get("route_codes"))},
    )


def drug_index(knowledge: Knowledge) -> DrugIndex:
    return knowledge.index("record.drugs", build_drug_index)


def agent_class(knowledge: Knowledge, agent: str) -> str | None:
    """The CONTRACT class of an agent ("IMiD", "PI", ...), None if it has none."""
    return drug_index(knowledge).agent_class.get(agent)


def names_in_text(text: str, idx: DrugIndex) -> list[str]:
    """Agents named in a text, in order of first mention, longest names first (melflufen ≠ melphalan)."""
    out: list[str] = []
    if not text or idx.name_re is None:
        return out
    for m in idx.name_re.finditer(text):
        agent = idx.name_to_agent.get(_norm_name(m.group(0)))
        if agent and agent not in out:
            out.append(agent)
    return out


def category_in_text(text: str, idx: DrugIndex) -> str | None:
    if not text or idx.supportive_re is None:
        return None
    m = idx.supportive_re.search(text)
    cat = idx.name_to_category.get(_norm_name(m.group(0))) if m else None
    if cat is not None:
        ex = idx.category_exclude.get(cat)
        if ex is not None and ex.search(text):
            return None
    return cat


@functools.lru_cache(maxsize=8192)
def route_from_text(text: str) -> str | None:
    """"iv" | "sc" | "oral" from route words; None when absent or contradictory words tie."""
    if not text:
        return None
    for route, pat in _ROUTE_PATTERNS:
        if pat.search(text):
            return route
    return None


def route_of_concept(concept: Any, knowledge: Knowledge) -> str | None:
    """Route of a Dosage.route concept: SNOMED route code, HL7 short code (IV, SC, PO) or its words."""
    if not concept:
        return None
    idx = drug_index(knowledge)
    if idx.route_memo is None:
        idx.route_memo = JsonMemo(lambda c: _route_of_concept(c, idx))
    return idx.route_memo(concept)


def _route_of_concept(concept: Any, idx: DrugIndex) -> str | None:
    parts: list[str] = []
    for c in codings(concept):
        code = as_str(c.get("code")).strip()
        hit = idx.route_codes.get((namespace(c.get("system"), code), code))
        if hit:
            return hit
        if code and len(code) <= 6 and code.isalpha():
            parts.append(code)
    parts.extend(concept_texts(concept))
    return route_from_text(" ".join(parts))


def _concepts_of(obj: dict) -> tuple[list[dict], list[str]]:
    """Codings and texts of a CodeableConcept, CodeableReference or Medication resource."""
    cods: list[dict] = []
    texts: list[str] = []
    if obj.get("resourceType") == "Medication" or "ingredient" in obj or (
        "code" in obj and isinstance(obj.get("code"), dict)
    ):
        code = obj.get("code")
        cods.extend(codings(code))
        texts.extend(concept_texts(code))
        for ing in as_list(obj.get("ingredient")):
            ing = as_dict(ing)
            item = ing.get("itemCodeableConcept") or as_dict(ing.get("item")).get("concept")
            if item is None and isinstance(ing.get("item"), dict) and "coding" in ing["item"]:
                item = ing["item"]  # DSTU2-ish / malformed: item as a bare concept
            if item is not None:
                cods.extend(codings(item))
                texts.extend(concept_texts(item))
            ref = as_dict(ing.get("itemReference") or as_dict(ing.get("item")).get("reference"))
            if ref.get("display"):
                texts.append(as_str(ref.get("display")))
        return cods, texts
    if "concept" in obj and isinstance(obj.get("concept"), dict):  # R5 CodeableReference
        cods.extend(codings(obj["concept"]))
        texts.extend(concept_texts(obj["concept"]))
        disp = as_str(as_dict(obj.get("reference")).get("display"))
        if disp:
            texts.append(disp)
        return cods, texts
    cods.extend(codings(obj))
    texts.extend(concept_texts(obj))
    if not cods and not texts and obj.get("display"):  # a Reference with only a display
        texts.append(as_str(obj.get("display")))
    return cods, texts


def resolve_drug(concept_or_medication: Any, knowledge: Knowledge) -> DrugMatch:
    """Resolve a CodeableConcept, CodeableReference, Reference(display) or Medication to a DrugMatch.

    Never raises: anything unreadable is simply "no agent".
    """
    try:
        idx = drug_index(knowledge)
        if isinstance(concept_or_medication, dict) and "contained" not in concept_or_medication:
            try:  # cheap exact key: EHRs repeat the same concept per cycle
                fast: bytes | None = orjson.dumps(concept_or_medication)
            except (TypeError, orjson.JSONEncodeError):
                fast = None
            if fast is not None and len(fast) < 4000:
                hit = idx.cache.get(("json", fast))
                if hit is None:
                    hit = _resolve(concept_or_medication, idx)
                    if len(idx.cache) < _CACHE_MAX:
                        idx.cache[("json", fast)] = hit
                return DrugMatch(list(hit.agents), hit.category, hit.display, hit.route, hit.matched_by)
        return _resolve(concept_or_medication, idx)
    except Exception:  # noqa: BLE001 - tolerant reader: an odd concept is an unknown drug
        return DrugMatch()


_CACHE_MAX = 20000


def _resolve(obj: Any, idx: DrugIndex) -> DrugMatch:
    if isinstance(obj, str):
        obj = {"text": obj}
    if not isinstance(obj, dict):
        return DrugMatch()
    cods, texts = _concepts_of(obj)
    key = (tuple((as_str(c.get("system")), as_str(c.get("code"))) for c in cods), tuple(texts),
           as_str(obj.get("display")) if not cods and not texts else "")
    hit = idx.cache.get(key)
    if hit is not None:
        return DrugMatch(list(hit.agents), hit.category, hit.display, hit.route, hit.matched_by)
    match = _resolve_parts(obj, cods, texts, idx)
    if len(idx.cache) < _CACHE_MAX:
        idx.cache[key] = match
    return DrugMatch(list(match.agents), match.category, match.display, match.route, match.matched_by)


def _resolve_parts(obj: dict, cods: list[dict], texts: list[str], idx: DrugIndex) -> DrugMatch:
    agents: list[str] = []
    matched_by = ""
    for c in cods:
        code = as_str(c.get("code")).strip()
        if not code:
            continue
        ns = namespace(c.get("system"), code)
        agent = None
        if ns == "rxnorm":
            agent = idx.rxnorm.get(code)
            if agent:
                matched_by = matched_by or "rxnorm"
        elif ns in ("atc", "") and ATC_RE.match(code.upper()):
            agent = idx.atc.get(code.upper())
            if agent:
                matched_by = matched_by or "atc"
        if agent and agent not in agents:
            agents.append(agent)
    joined = " | ".join(texts)
    for agent in names_in_text(joined, idx):
        if agent not in agents:
            agents.append(agent)
            matched_by = matched_by or "name"
    # A steroid in a local form (eye drops, inhaler, cream) is not systemic therapy.
    if agents and idx.local_form_re is not None and idx.local_form_re.search(joined):
        agents = [a for a in agents if a not in idx.local_form_agents]
    category = None if agents else category_in_text(joined, idx)
    display = texts[0] if texts else concept_display(obj)
    if not display:
        for c in cods:
            if c.get("code"):
                display = as_str(c.get("code"))
                break
    route = route_from_text(joined) if agents else None
    if route == "oral" and agents and not re.search(r"\boral|\btablet|\bcapsule|\bp\.?o\.?\b", joined, re.I):
        route = None
    return DrugMatch(agents=agents, category=category, display=display, route=route, matched_by=matched_by)


# ---------------------------------------------------------------- doses and high-dose steroids

_MG_RE = re.compile(r"(\d+(?:[.,]\d+)?)\s*(mg|milligram\w*|g|gram\w*)\b(?!\s*/\s*(?:kg|m2|m²|ml|dl|l)\b)", re.I)
_PERIOD_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.0, "a": 365.0}


def _mg(value: Any, unit: Any) -> float | None:
    v = as_float(value)
    if v is None or v < 0:
        return None
    u = as_str(unit).strip().lower()
    if u in ("mg", "milligram", "milligrams", "mg/dose", ""):
        return v
    if u in ("g", "gram", "grams"):
        return v * 1000
    if u in ("mcg", "ug", "µg", "microgram", "micrograms"):
        return v / 1000
    return None


def dose_mg(dosage: Any) -> float | None:
    """The dose in mg of one Dosage (R4 doseAndRate, DSTU2 doseQuantity, Administration dose, text)."""
    d = as_dict(dosage)
    for dr in as_list(d.get("doseAndRate")):
        q = as_dict(as_dict(dr).get("doseQuantity"))
        if q:
            mg = _mg(q.get("value"), q.get("unit") or q.get("code"))
            if mg is not None:
                return mg
        rng = as_dict(as_dict(dr).get("doseRange"))
        hi = as_dict(rng.get("high"))
        if hi:
            mg = _mg(hi.get("value"), hi.get("unit") or hi.get("code"))
            if mg is not None:
                return mg
    for key in ("doseQuantity", "dose"):
        q = as_dict(d.get(key))
        if q:
            mg = _mg(q.get("value"), q.get("unit") or q.get("code"))
            if mg is not None:
                return mg
    return mg_in_text(as_str(d.get("text")))


def mg_in_text(text: str) -> float | None:
    if not text:
        return None
    best = None
    for m in _MG_RE.finditer(text):
        v = as_float(m.group(1))
        if v is None:
            continue
        if m.group(2).lower().startswith("g"):
            v *= 1000
        best = v if best is None else max(best, v)
    return best


_DAY_LIST_RE = re.compile(r"\bdays?\s+((?:\d+\s*(?:-|–|to)\s*\d+|\d+)(?:\s*(?:,|and|&)\s*(?:\d+\s*(?:-|–|to)\s*\d+|\d+))*)", re.I)
_CYCLE_RE = re.compile(r"\b(?:q\s*|every\s+)?(21|28|35)[- ]?(?:day|d)\b|\bq\s*(21|28|35)\s*d", re.I)


def _days_in_cycle(text: str) -> float | None:
    """'40 mg days 1-4, 9-12, 17-20' -> 12 dosing days per 28-day cycle (21/35 when the text says so)."""
    m = _DAY_LIST_RE.search(text)
    if not m:
        return None
    days: set[int] = set()
    for part in re.split(r"\s*(?:,|and|&)\s*", m.group(1)):
        bounds = re.split(r"\s*(?:-|–|to)\s*", part.strip())
        try:
            lo, hi = int(bounds[0]), int(bounds[-1])
        except ValueError:
            continue
        if 0 < lo <= hi <= 60:
            days.update(range(lo, hi + 1))
    if not days:
        return None
    c = _CYCLE_RE.search(text)
    cycle = int(next(g for g in c.groups() if g)) if c else 28
    return len(days) / max(cycle, max(days))


def doses_per_day(dosage: Any) -> float | None:
    """How many doses a day the Dosage timing gives (frequency / period), None if not stated."""
    rep = as_dict(as_dict(as_dict(dosage).get("timing")).get("repeat"))
    freq = as_float(rep.get("frequencyMax")) or as_float(rep.get("frequency"))
    period = as_float(rep.get("period"))
    unit = as_str(rep.get("periodUnit")).lower()
    if not freq or not period or unit not in _PERIOD_DAYS:
        text = as_str(as_dict(dosage).get("text")).lower()
        in_cycle = _days_in_cycle(text)
        if in_cycle is not None:
            return in_cycle
        if re.search(r"\bweekly\b|once a week|every week|\bq\s*w(ee)?k\b|/\s*week", text):
            return 1 / 7
        if re.search(r"\b(daily|once a day|every day|qd|od)\b", text):
            return 1.0
        if re.search(r"\b(twice daily|bid|b\.i\.d)\b", text):
            return 2.0
        return None
    days = period * _PERIOD_DAYS[unit]
    return freq / days if days > 0 else None


_HIGH_DOSE_WORDS = re.compile(r"\bhigh[- ]dose\b|\bpulsed?\b|\bHD[- ]?dex", re.I)


def is_high_dose_steroid(agents: list[str], dosages: list[Any], fallback_text: str, knowledge: Knowledge) -> bool:
    """Dexamethasone at >= 80 mg a week by its schedule, or written as high-dose/pulse; prednisone
    >= 20 mg a day (thresholds and their reasons in mappings/supportive.yaml)."""
    try:
        th = drug_index(knowledge).steroid_thresholds
        dex = as_dict(th.get("dexamethasone"))
        pred = as_dict(th.get("prednisone"))
        for agent in agents:
            if agent not in ("dexamethasone", "prednisone"):
                continue
            if agent == "dexamethasone":
                words = " ".join([fallback_text, *(as_str(as_dict(d).get("text")) for d in dosages)])
                if _HIGH_DOSE_WORDS.search(words):
                    return True
            pairs = [(dose_mg(d), doses_per_day(d)) for d in dosages if isinstance(d, dict)]
            pairs = [p for p in pairs if p[0] is not None]
            if not pairs:
                mg = mg_in_text(fallback_text)
                pairs = [(mg, None)] if mg is not None else []
            for mg, per_day in pairs:
                assert mg is not None
                if agent == "dexamethasone":
                    if "per_dose_mg" in dex and mg >= float(dex["per_dose_mg"]):
                        return True
                    if per_day is not None and mg * per_day * 7 >= float(dex.get("per_week_mg", 80)):
                        return True
                else:
                    daily = mg * per_day if per_day is not None and per_day >= 1 else mg
                    if daily >= float(pred.get("per_day_mg", 20)):
                        return True
        return False
    except Exception:  # noqa: BLE001 - unparseable doses are "not known to be high"
        return False
