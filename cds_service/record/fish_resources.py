"""FISH and cytogenetic results in FHIR resources → CytoFinding (documented negatives included).

Where labs put them: Genomics Reporting Variant Observations (ISCN, gene, location, copy number,
allelic frequency components), lab-style Observations (the abnormality in the code and the result
in the value, or one component per probe), and narrative DiagnosticReports / DocumentReferences.
The wording itself is read by `record/fish.py`; here each resource shape is taken apart so that
every result reaches that reader with the words that belong to it.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date
from typing import Any

from cds_service.knowledge.loader import Knowledge
from cds_service.record.catalogs import coded, observation_index
from cds_service.record.fhirutil import as_dict, as_float, as_list, as_str, concept_texts, first_date, status_code
from cds_service.record.fish import FishResult, abnormalities_in, fish_index, is_fish_text, read_fish_text
from cds_service.record.model import CytoFinding, PatientRecord


def _notes_text(res: dict) -> str:
    return " ".join(as_str(as_dict(n).get("text")) for n in as_list(res.get("note")))


def value_texts(res: dict) -> list[str]:
    out = concept_texts(res.get("valueCodeableConcept"))
    for key in ("valueString", "valueBoolean"):
        v = res.get(key)
        if isinstance(v, str) and v.strip():
            out.append(v)
    return out



def _result_words(concept: Any, knowledge: Knowledge) -> str:
    """Coded result values read as words: LOINC LA9633-4 / SNOMED 260373001 -> "detected",
    LA9634-2 / 260415000 -> "not detected" (a value sent as a bare code, without display)."""
    meaning = observation_index(knowledge).value_meaning
    for key in coded(concept):
        m = meaning.get(key)
        if m == "present":
            return "detected"
        if m == "absent":
            return "not detected"
    return ""


def _component_text(comp: dict, knowledge: Knowledge | None = None) -> str:
    parts = concept_texts(comp.get("valueCodeableConcept"))
    for key in ("valueString",):
        if isinstance(comp.get(key), str):
            parts.append(comp[key])
    if knowledge is not None:
        words = _result_words(comp.get("valueCodeableConcept"), knowledge)
        if words:
            parts.append(words)
    for c in as_list(as_dict(comp.get("valueCodeableConcept")).get("coding")):
        code = as_str(as_dict(c).get("code"))
        if code and code not in parts:
            parts.append(code)
    return " ".join(parts)


_NO_RESULT_VALUE = re.compile(r"no[\s-]call|indeterminate|inconclusive|uninformative|fail|not (performed|tested|done)"
                              r"|insufficient|pending|cancel", re.I)


def _variant_presence(res: dict, knowledge: Knowledge) -> tuple[bool | None, bool]:
    """(present, stated) of a Variant's own value; stated False when it has no value at all."""
    idx = observation_index(knowledge)
    for key in coded(res.get("valueCodeableConcept")):
        meaning = idx.value_meaning.get(key)
        if meaning in ("present", "absent"):
            return meaning == "present", True
    vt = " ".join(value_texts(res)).lower()
    if vt and _NO_RESULT_VALUE.search(vt):
        return None, True  # a test without a result is no finding
    if vt:
        if re.search(r"\b(absent|not detected|negative|no|none|neg)\b", vt):
            return False, True
        if re.search(r"\b(present|detected|positive|yes|pos)\b", vt):
            return True, True
    if isinstance(res.get("valueBoolean"), bool):
        return res["valueBoolean"], True
    if res.get("valueCodeableConcept") or res.get("valueString"):
        return None, True  # a value we cannot read (no call, unknown code): no finding
    return None, False


def read_variant(res: dict, knowledge: Knowledge, record: PatientRecord, source: str, when: date | None) -> None:
    """Genomics Reporting Variant: abnormality from ISCN / gene / location, presence from the value.

    Components the Genomics Reporting IG does not define (a lab's "IGH/FGFR3 FUSION, T(4;14)" with
    its own "NOT DETECTED") carry their own result and are read as a report; a Variant without a
    value reports a found variant only when nothing in it says otherwise."""
    idx = observation_index(knowledge)
    pieces: list[str] = []
    own_results: list[str] = []  # "code: value" of components that state their own result
    fraction = None
    hgvs = False
    copies: int | None = None
    for comp in as_list(res.get("component")):
        comp = as_dict(comp)
        role = None
        for k in coded(comp.get("code")):
            role = idx.component_role.get(k) or role
        text = _component_text(comp, knowledge)
        if role == "gene-studied":
            genes = fish_index(knowledge).gene_ids
            text = " ".join(genes.get(w.upper(), w) for w in text.split())
        if role in ("iscn", "gene-studied", "cytogenetic-location", "change-type", "allelic-state"):
            pieces.append(text)
        elif role == "hgvs":
            hgvs = hgvs or bool(text.strip())
        elif role == "copy-number":
            cn = as_float(as_dict(comp.get("valueQuantity")).get("value"))
            if cn is None:
                cn = as_float(comp.get("valueInteger"))
            if cn is not None:
                copies = int(cn)
                pieces.append(f"{copies} copies")
        elif role == "allelic-frequency":
            q = as_dict(comp.get("valueQuantity"))
            f = as_float(q.get("value"))
            if f is not None:
                fraction = f / 100.0 if (f > 1 or "%" in as_str(q.get("unit")) + as_str(q.get("code"))) else f
        elif role is None:
            label = " ".join(concept_texts(comp.get("code")))
            pieces.append(label + " " + text)
            if text.strip() or comp.get("valueQuantity"):
                q = as_dict(comp.get("valueQuantity"))
                qv = as_float(q.get("value"))
                qtext = f" {qv:g}{as_str(q.get('unit')) or as_str(q.get('code'))}" if qv is not None else ""
                own_results.append(f"{label}: {text}{qtext}")
    present, stated = _variant_presence(res, knowledge)
    if stated and present is None:
        return
    fidx = fish_index(knowledge)
    text = " ; ".join(p for p in pieces if p.strip()) + " " + " ".join(concept_texts(res.get("code")))
    if hgvs and re.search(r"\bTP53\b", text, re.I):
        text += " TP53 mutation"  # a sequence variant of TP53: a mutation, not del(17p)
    own = read_fish_text("\n".join(own_results), knowledge) if own_results else []
    if own_results and not stated and (not own or any(not r.present for r in own)):
        # the components say what was found; anything they negate is not a found variant
        _add_results(record, own, source, when, fraction)
        return
    if present is None:
        present = True  # a Variant observation without a value reports a found variant
    abns = abnormalities_in(text + " t(", fidx) if re.search(r"IGH|14q32|t\s*\(", text, re.I) else abnormalities_in(text, fidx)
    if "TP53-mutation" in abns and "del(17p)" in abns and hgvs:
        abns.remove("del(17p)")
    if not abns and value_texts(res):
        # the ISCN / abnormality written in the value itself ("t(11;14)(q13;q32) detected"),
        # presence from the same value's words (read above)
        val = " ".join(value_texts(res))
        abns = abnormalities_in(val + " t(", fidx) if re.search(r"IGH|14q32|t\s*\(", val, re.I) else abnormalities_in(val, fidx)
    if abns:
        results = []
        for ab in abns:
            kind = fidx.kinds.get(ab)
            pres = present
            allelic = None
            if copies is not None and kind == "gain" and copies <= 2:
                pres = False  # "1q21 present" with 2 copies is no gain
            if kind == "loss" and pres:
                if copies is not None and copies <= 1:
                    allelic = "bi" if copies == 0 else "mono"
                elif re.search(r"\bbi-?allelic\b|\bhomozygous\b", text, re.I):
                    allelic = "bi"
                elif re.search(r"\bmono-?allelic\b|\bhemizygous\b|\bheterozygous\b", text, re.I):
                    allelic = "mono"
            results.append(FishResult(ab, pres, None, allelic))
        negated = {r.abnormality for r in own if not r.present}
        results = [r for r in results if not (r.present and r.abnormality in negated)] + [
            r for r in own if r.abnormality not in abns]
        _add_results(record, results, source, when, fraction)
        return
    _add_results(record, read_fish_text(text, knowledge) + own, source, when, fraction)


def _add_results(record: PatientRecord, results: list[FishResult], source: str, when: date | None,
                 fraction: float | None = None) -> None:
    """One CytoFinding per (abnormality, result) of one resource; a stated clone % is kept."""
    seen: dict[tuple[str, bool], int] = {}
    for r in results:
        key = (r.abnormality, r.present)
        frac = r.fraction if r.fraction is not None else (fraction if r.present else None)
        if key in seen:
            prev = record.cytogenetics[seen[key]]
            if prev.clonal_fraction is None and frac is not None:
                prev.clonal_fraction = frac
            prev.allelic = prev.allelic or r.allelic
            continue
        seen[key] = len(record.cytogenetics)
        record.cytogenetics.append(CytoFinding(abnormality=r.abnormality, present=r.present, date=when, source=source,
                                               clonal_fraction=frac, allelic=r.allelic))


def read_fish_observation(res: dict, knowledge: Knowledge, record: PatientRecord, source: str,
                           when: date | None, code_text: str) -> None:
    """Lab-style FISH observations: result in the value, components, notes or interpretation."""
    clauses: list[str] = []
    vt = " ".join(value_texts(res) + [_result_words(res.get("valueCodeableConcept"), knowledge)]).strip()
    interp = " ".join(concept_texts(res.get("interpretation")))
    q = as_dict(res.get("valueQuantity"))
    if q and as_float(q.get("value")) is not None:
        # "del(17p) % of plasma cells" = 45 %: the clone size is the result
        vt += f" {as_float(q.get('value')):g}{as_str(q.get('unit')) or as_str(q.get('code'))}"
    # The code names the abnormality ("del(17p) by FISH") and the value gives the result.
    if vt.strip() or interp:
        clauses.append(f"{code_text}: {vt.strip()} {interp}".strip())
    for comp in as_list(res.get("component")):
        comp = as_dict(comp)
        ctext = " ".join(concept_texts(comp.get("code")))
        val = _component_text(comp, knowledge) + " " + " ".join(concept_texts(comp.get("interpretation")))
        cq = as_dict(comp.get("valueQuantity"))
        if cq and as_float(cq.get("value")) is not None:
            val += f" {as_float(cq.get('value')):g}{as_str(cq.get('unit')) or as_str(cq.get('code'))}"
        clauses.append(f"{ctext}: {val}")
    note = _notes_text(res)
    if note:
        clauses.append(note)
    _append_fish(record, "\n".join(clauses), knowledge, source, when)


def _append_fish(record: PatientRecord, text: str, knowledge: Knowledge, source: str, when: date | None) -> None:
    _add_results(record, read_fish_text(text, knowledge), source, when)


# ------------------------------------------------------------------------------ reports


def _decode_attachment(att: dict) -> str:
    ctype = as_str(att.get("contentType")).lower()
    if ctype and not (ctype.startswith("text/") or "json" in ctype or "xml" in ctype):
        return ""
    data = att.get("data")
    if not isinstance(data, str) or not data:
        return ""
    try:
        raw = base64.b64decode(data[:400000], validate=False)
    except (binascii.Error, ValueError):
        return ""
    text = raw.decode("utf-8", errors="ignore")
    if "html" in ctype or "xml" in ctype:
        text = re.sub(r"<[^>]+>", " ", text)
    return text


def read_report(res: dict, knowledge: Knowledge, record: PatientRecord) -> None:
    """DiagnosticReport (conclusion, conclusionCode, presentedForm) or DocumentReference (attachments)."""
    status = status_code(res.get("status"))
    if status in ("entered-in-error", "cancelled"):
        return
    rtype = as_str(res.get("resourceType")) or "DiagnosticReport"
    source = f"{rtype}/{as_str(res.get('id')) or '?'}"
    code_text = " ".join(concept_texts(res.get("code")) + concept_texts(res.get("category"))
                         + concept_texts(res.get("type")) + [as_str(res.get("description"))])
    parts = [as_str(res.get("conclusion"))]
    parts += concept_texts(res.get("conclusionCode"))
    for att in as_list(res.get("presentedForm")):
        parts.append(_decode_attachment(as_dict(att)))
    for content in as_list(res.get("content")):
        parts.append(_decode_attachment(as_dict(as_dict(content).get("attachment"))))
    div = as_str(as_dict(res.get("text")).get("div"))
    if div and not any(p.strip() for p in parts):
        parts.append(re.sub(r"<[^>]+>", " ", div))
    body = "\n".join(p for p in parts if p and p.strip())
    if not body:
        return
    if not (is_fish_text(code_text, knowledge) or is_fish_text(body, knowledge)):
        return
    when = first_date(res.get("effectiveDateTime"), as_dict(res.get("effectivePeriod")).get("start"),
                      res.get("issued"), as_dict(as_dict(res.get("context")).get("period")).get("start"), res.get("date"))
    _append_fish(record, body, knowledge, source, when)
