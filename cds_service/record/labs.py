"""Serum labs the clinical core reads: free light chains, β2-microglobulin, creatinine, urine M-protein.

Why a module of its own: each lab arrives LOINC-coded or under a local code with only a wording,
in the units of the lab that ran it (FLC mg/L or mg/dL; β2-microglobulin mg/L, µg/mL or mg/dL;
creatinine mg/dL or µmol/L; urine M-protein mg or g per 24 h). Everything is converted here once to
one unit per lab, so the rules compare numbers without caring who measured them. A value whose unit
cannot be understood is skipped with a note rather than guessed.

Codes and wordings are data (`mappings/observations.yaml`: `codes` roles and `lab_code_text`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from cds_service.knowledge.loader import Knowledge
from cds_service.record.catalogs import words_re
from cds_service.record.fhirutil import as_dict, as_float, as_list, as_str
from cds_service.record.model import LabValue, PatientRecord

LAB_KINDS = ("flc-kappa", "flc-lambda", "b2m", "creatinine", "urine-m-protein")
# molar mass of creatinine 113.12 g/mol: 1 mg/dL = 88.4 µmol/L (the conversion clinical labs print)
CREATININE_UMOL_PER_MG_DL = 88.4

# unit (lower case, blanks removed) -> factor to the lab's canonical unit
_MASS_MG_L = {"mg/l": 1.0, "ug/ml": 1.0, "µg/ml": 1.0, "μg/ml": 1.0, "mcg/ml": 1.0, "mg/dl": 10.0, "g/l": 1000.0,
              "ug/l": 0.001, "µg/l": 0.001, "μg/l": 0.001, "ng/ml": 0.001, "mg/100ml": 10.0}
_CREATININE_MG_DL = {"mg/dl": 1.0, "mg/100ml": 1.0, "mg/l": 0.1, "umol/l": 1 / CREATININE_UMOL_PER_MG_DL,
                     "µmol/l": 1 / CREATININE_UMOL_PER_MG_DL, "μmol/l": 1 / CREATININE_UMOL_PER_MG_DL,
                     "mmol/l": 1000 / CREATININE_UMOL_PER_MG_DL}
_URINE_MG_24H = {"mg/24h": 1.0, "mg/(24.h)": 1.0, "mg/d": 1.0, "mg/day": 1.0, "mg/24hr": 1.0, "mg/24hrs": 1.0,
                 "mg/24hours": 1.0, "g/24h": 1000.0, "g/(24.h)": 1000.0, "g/d": 1000.0, "g/day": 1000.0,
                 "g/24hr": 1000.0, "g/24hours": 1000.0}
CANONICAL = {"flc-kappa": ("mg/L", _MASS_MG_L), "flc-lambda": ("mg/L", _MASS_MG_L), "b2m": ("mg/L", _MASS_MG_L),
             "creatinine": ("mg/dL", _CREATININE_MG_DL), "urine-m-protein": ("mg/24h", _URINE_MG_24H)}
_NUMBER = re.compile(r"^\s*[<>≤≥=~]*\s*(\d+(?:[.,]\d+)?)\s*([^\d\s].*)?$")


@dataclass(frozen=True)
class LabIndex:
    match: dict[str, re.Pattern[str]]
    exclude: dict[str, re.Pattern[str]]
    require: dict[str, re.Pattern[str]]


def _build(knowledge: Knowledge) -> LabIndex:
    doc = as_dict(as_dict(knowledge.mappings.get("observations")).get("lab_code_text"))
    out: dict[str, dict[str, re.Pattern[str]]] = {"match": {}, "exclude": {}, "require": {}}
    for kind, body in doc.items():
        for key in out:
            pat = words_re(as_list(as_dict(body).get(key)))
            if pat is not None:
                out[key][str(kind)] = pat
    return LabIndex(**out)


def lab_index(knowledge: Knowledge) -> LabIndex:
    return knowledge.index("record.labs", _build)


def lab_kind_of_text(text: str, knowledge: Knowledge) -> str | None:
    """The lab a local code's wording names ("Free Kappa Light Chains" -> "flc-kappa"), or None."""
    if not text:
        return None
    idx = lab_index(knowledge)
    for kind in LAB_KINDS:
        m = idx.match.get(kind)
        if m is None or not m.search(text):
            continue
        req = idx.require.get(kind)
        if req is not None and not req.search(text):
            continue
        ex = idx.exclude.get(kind)
        if ex is not None and ex.search(text):
            continue
        return kind
    return None


def _quantity(res: dict) -> tuple[float | None, str]:
    """(number, unit) from valueQuantity, or from a valueString such as "12.3 mg/L" / "<0.5"."""
    q = as_dict(res.get("valueQuantity"))
    if q:
        return as_float(q.get("value")), (as_str(q.get("code")) or as_str(q.get("unit")))
    s = as_str(res.get("valueString"))
    m = _NUMBER.match(s) if s else None
    if m:
        return as_float(m.group(1).replace(",", ".")), (m.group(2) or "").strip()
    return None, ""


@functools.lru_cache(maxsize=1024)  # a chart repeats a handful of unit strings on every result
def _norm_unit(unit: str) -> str:
    u = unit.strip().lower().replace(" ", "").replace("{", "").replace("}", "")
    return u.replace("per", "/").replace("hours", "h").replace("hour", "h").replace("hrs", "h").replace("hr", "h")


def convert(kind: str, value: float, unit: str) -> float | None:
    """The value in the lab's canonical unit (CANONICAL), or None when the unit is not understood.

    Without a unit only the canonical unit's usual range is trusted: FLC and β2-microglobulin are
    charted in mg/L by most labs; creatinine without a unit below 20 is mg/dL (µmol/L values are
    larger); a urine M-protein without a unit is not read."""
    _, table = CANONICAL[kind]
    u = _norm_unit(unit)
    if not u:
        if kind in ("flc-kappa", "flc-lambda", "b2m"):
            return value
        if kind == "creatinine" and value < 20:
            return value
        return None
    factor = table.get(u)
    if factor is None and kind == "urine-m-protein":
        factor = table.get(u.replace("/24.h", "/24h").replace("(24h)", "24h"))
    return value * factor if factor is not None else None


_LABEL = {"flc-kappa": "kappa free light chain", "flc-lambda": "lambda free light chain",
          "b2m": "beta-2-microglobulin", "creatinine": "creatinine", "urine-m-protein": "urine M-protein"}


def read_lab(res: dict, kind: str, record: PatientRecord, source: str, when: date | None, code: str) -> None:
    """Append one lab value in its canonical unit to the record list of its kind."""
    if when is None:
        return
    value, unit = _quantity(res)
    if value is None or value != value or value < 0:
        return
    canonical, _ = CANONICAL[kind]
    v = convert(kind, value, unit)
    if v is None:
        record.notes.append(f"{_LABEL[kind]} value skipped: unit '{unit[:20]}' not understood.")
        return
    lab = LabValue(date=when, value=v, unit=canonical, source=source, code=code)
    if kind in ("flc-kappa", "flc-lambda"):
        record.flc.append(lab)
    elif kind == "b2m":
        record.b2m.append(lab)
    elif kind == "creatinine":
        record.creatinine.append(lab)
    else:
        record.urine_m_protein.append(lab)


def flc_chain(v: Any) -> str | None:
    """"kappa" | "lambda" of an FLC LabValue (its code: the LOINC or the chain name)."""
    code = as_str(getattr(v, "code", ""))
    if code in ("36916-5", "kappa"):
        return "kappa"
    if code in ("33944-0", "lambda"):
        return "lambda"
    return None
