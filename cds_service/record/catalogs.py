"""Lookup indexes over mappings/ (conditions, procedures, status reasons, observations).

Built once per process through `Knowledge.index`; the normaliser only does dict lookups and
precompiled regex searches per resource (no scans over the catalog per resource).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cds_service.knowledge.loader import Knowledge
from cds_service.record.fhirutil import as_dict, as_list, as_str, codings, namespace

ICD_RE = re.compile(r"^[A-Z]\d{2}(\.?[0-9A-Z]{0,4})?$")


def norm_code(ns: str, code: str) -> tuple[str, str]:
    """Namespace and code in comparable form: ICD codes without the dot and upper-case."""
    code = code.strip()
    if ns in ("icd10", "icd10cm"):
        return "icd10", code.upper().replace(".", "")
    return ns, code


def guess_namespace(system: Any, code: str) -> str:
    """The namespace of a coding; when the system is missing, only unmistakable shapes count."""
    ns = namespace(system, code)
    if ns:
        return ns
    c = code.strip().upper()
    if ICD_RE.match(c) and not re.match(r"^[A-Z]\d{2}[A-Z]{2}\d{2}$", c):
        return "icd10"
    if c.isdigit() and len(c) >= 6:
        return "snomed"
    if re.match(r"^\d{1,7}-\d$", c):
        return "loinc"
    return ""


def coded(concept: Any) -> list[tuple[str, str]]:
    """(namespace, normalised code) for every coding of a concept."""
    out = []
    for c in codings(concept):
        code = as_str(c.get("code"))
        if not code.strip():
            continue
        out.append(norm_code(guess_namespace(c.get("system"), code), code))
    return out


def words_re(phrases: list[str]) -> re.Pattern[str] | None:
    """Whole-word, case-insensitive alternation of literal phrases (spaces match any blank/hyphen)."""
    uniq = sorted({p.strip().lower() for p in phrases if isinstance(p, str) and p.strip()}, key=len, reverse=True)
    if not uniq:
        return None
    parts = [r"[\s\-]+".join(re.escape(w) for w in p.split()) for p in uniq]
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(parts) + r")(?![a-z0-9])", re.I)


@dataclass
class ConditionIndex:
    by_code: dict[tuple[str, str], tuple[str, dict]]
    icd_category: dict[str, str]  # "C900" -> kind (prefix fallback for unlisted 5th characters)
    order: list[str]
    text: dict[str, re.Pattern[str]]
    kind_exclude: dict[str, re.Pattern[str]]
    exclude: re.Pattern[str] | None
    myeloma_kinds: frozenset[str]
    non_myeloma_blockers: frozenset[str]


def build_condition_index(knowledge: Knowledge) -> ConditionIndex:
    doc = as_dict(knowledge.mappings.get("conditions"))
    by_code: dict[tuple[str, str], tuple[str, dict]] = {}
    icd_category: dict[str, str] = {}
    text: dict[str, re.Pattern[str]] = {}
    kind_exclude: dict[str, re.Pattern[str]] = {}
    myeloma = set()
    blockers = set()
    for kind, body in as_dict(doc.get("kinds")).items():
        body = as_dict(body)
        if body.get("myeloma"):
            myeloma.add(kind)
        elif kind in ("smoldering", "mgus"):
            blockers.add(kind)
        for c in as_list(body.get("codes")):
            key = norm_code(str(c["system"]), str(c["code"]))
            by_code[key] = (kind, c)
            if key[0] == "icd10" and len(key[1]) >= 4:
                icd_category.setdefault(key[1][:4], kind)
        pat = words_re(as_list(body.get("text")))
        if pat is not None:
            text[kind] = pat
        ex = words_re(as_list(body.get("exclude_text")))
        if ex is not None:
            kind_exclude[kind] = ex
    order = [k for k in as_list(doc.get("order")) if k in as_dict(doc.get("kinds"))]
    return ConditionIndex(
        by_code=by_code,
        icd_category=icd_category,
        order=order,
        text=text,
        kind_exclude=kind_exclude,
        exclude=words_re(as_list(doc.get("exclude_text"))),
        myeloma_kinds=frozenset(myeloma),
        non_myeloma_blockers=frozenset(blockers),
    )


@dataclass
class ProcedureIndex:
    by_code: dict[tuple[str, str], dict]
    transplant: re.Pattern[str] | None
    autologous: re.Pattern[str] | None
    allogeneic: re.Pattern[str] | None
    exclude: re.Pattern[str] | None


def build_procedure_index(knowledge: Knowledge) -> ProcedureIndex:
    doc = as_dict(knowledge.mappings.get("procedures"))
    by_code = {norm_code(str(c["system"]), str(c["code"])): c for c in as_list(doc.get("codes"))}
    t = as_dict(doc.get("text"))
    return ProcedureIndex(
        by_code=by_code,
        transplant=words_re(as_list(t.get("transplant"))),
        autologous=words_re(as_list(t.get("autologous"))),
        allogeneic=words_re(as_list(t.get("allogeneic"))),
        exclude=words_re(as_list(t.get("exclude"))),
    )


@dataclass
class StatusReasonIndex:
    by_code: dict[tuple[str, str], str]
    order: list[str]
    text: dict[str, re.Pattern[str]]
    negated: re.Pattern[str] | None = None  # negated progression wordings, removed before matching


def build_status_reason_index(knowledge: Knowledge) -> StatusReasonIndex:
    doc = as_dict(knowledge.mappings.get("status_reasons"))
    by_code = {norm_code(str(c["system"]), str(c["code"])): str(c["category"]) for c in as_list(doc.get("codes"))}
    text = {}
    for cat, phrases in as_dict(doc.get("text")).items():
        pat = words_re(as_list(phrases))
        if pat is not None:
            text[cat] = pat
    return StatusReasonIndex(by_code=by_code, order=list(as_list(doc.get("order"))), text=text,
                             negated=words_re(as_list(doc.get("negated_progression"))))


@dataclass
class ObservationIndex:
    role_by_code: dict[tuple[str, str], str]
    component_role: dict[tuple[str, str], str]
    value_meaning: dict[tuple[str, str], str]
    response_code: re.Pattern[str] | None
    progression_value: re.Pattern[str] | None
    non_progression_value: re.Pattern[str] | None
    m_protein_code: re.Pattern[str] | None
    m_protein_exclude: re.Pattern[str] | None
    ecog_code: re.Pattern[str] | None
    ecog_answers: list[tuple[float, re.Pattern[str]]]


def build_observation_index(knowledge: Knowledge) -> ObservationIndex:
    doc = as_dict(knowledge.mappings.get("observations"))

    def table(key: str, field: str) -> dict[tuple[str, str], str]:
        return {norm_code(str(c["system"]), str(c["code"])): str(c[field]) for c in as_list(doc.get(key))}

    return ObservationIndex(
        role_by_code=table("codes", "role"),
        component_role=table("components", "role"),
        value_meaning=table("values", "meaning"),
        response_code=words_re(as_list(doc.get("response_code_text"))),
        progression_value=words_re(as_list(doc.get("progression_value_text"))),
        non_progression_value=words_re(as_list(doc.get("non_progression_value_text"))),
        m_protein_code=words_re(as_list(doc.get("m_protein_code_text"))),
        m_protein_exclude=words_re(as_list(doc.get("m_protein_exclude_text"))),
        ecog_code=words_re(as_list(doc.get("ecog_code_text"))),
        ecog_answers=[(float(k), pat) for k, v in sorted(as_dict(doc.get("ecog_answer_text")).items())
                      if k != "source" and (pat := words_re(as_list(v))) is not None],
    )


def condition_index(k: Knowledge) -> ConditionIndex:
    return k.index("record.conditions", build_condition_index)


def procedure_index(k: Knowledge) -> ProcedureIndex:
    return k.index("record.procedures", build_procedure_index)


def status_reason_index(k: Knowledge) -> StatusReasonIndex:
    return k.index("record.status_reasons", build_status_reason_index)


def observation_index(k: Knowledge) -> ObservationIndex:
    return k.index("record.observations", build_observation_index)


def classify_reason(concepts: list[Any], knowledge: Knowledge, allow_other: bool = True) -> tuple[str | None, str]:
    """Stop-reason category of statusReason-like concepts (or strings) and their text.

    Codes first, then words in `order` (progression before toxicity). An unrecognised reason is
    "other" when `allow_other` (a statusReason), else None (a reasonCode that merely names the
    disease treated is no stop reason).
    """
    idx = status_reason_index(knowledge)
    from cds_service.record.fhirutil import concept_texts

    texts: list[str] = []
    found: str | None = None
    for c in concepts:
        if isinstance(c, str):
            if c.strip():
                texts.append(c)
            continue
        for key in coded(c):
            cat = idx.by_code.get(key)
            if cat and (found is None or idx.order.index(cat) < idx.order.index(found)):
                found = cat
        texts.extend(concept_texts(c))
    text = "; ".join(dict.fromkeys(t.strip() for t in texts if t.strip()))
    if found is None and text:
        # "no evidence of progression - completed", "not for progression": the negated wording is
        # no progression; the rest of the reason decides
        plain = idx.negated.sub(" ", text) if idx.negated is not None else text
        for cat in idx.order:
            pat = idx.text.get(cat)
            if pat is not None and pat.search(plain):
                found = cat
                break
    if found is None and allow_other and (text or concepts):
        found = "other" if (text or any(coded(c) for c in concepts if not isinstance(c, str))) else None
    if found == "other" and not allow_other:
        found = None
    return found, text
