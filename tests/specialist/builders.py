"""Builders for the specialist's 2026 patients: one story, several real-world FHIR encodings.

The red-team `Patient` (tests/redteam/builders.py) holds the resources; this module adds the ways
a myeloma chart is actually written in 2026: a regimen as MedicationStatements, as one
MedicationRequest per cycle (Epic-style boundsPeriod), or as infusion-room MedicationAdministrations
next to oral prescriptions; CAR-T as a Procedure, a MedicationAdministration or a
MedicationStatement with the brand name; FISH as a coded Genomics-Reporting variant Observation
or a narrative report; free light chains in mg/L or mg/dL.

Codes and their sources (house rule: never invent a clinical identifier; where no verified code
exists the drug is written by its name or brand, as many EHRs do):
- RxNorm ingredient codes: tests/redteam/builders.RX_IN (docs/reference/drug_codes.json).
- RxNorm 2619432 teclistamab-cqyv product (Tecvayli): docs/reference/terminology.md §1 /
  mappings/agents.yaml.
- ATC: L01FC02 isatuximab, L01XX66 selinexor, L01FX24 teclistamab, L01FX32 elranatamab,
  L01FX29 talquetamab, L01XL05 ciltacabtagene autoleucel, L01XL07 idecabtagene vicleucel
  (docs/reference/terminology.md §1, WHO ATC 2026 snapshot; mappings/agents.yaml).
- LOINC 36916-5 κ free light chain, 33944-0 λ free light chain, 69548-6 genetic variant
  assessment, 81291-7 ISCN component, 81258-6 sample variant allelic frequency, 89247-1 ECOG;
  SNOMED 426329006 FISH method; LOINC answers LA9633-4 Present / LA9634-2 Absent
  (docs/reference/terminology.md §3, mappings/observations.yaml).
- ICD-10-CM C90.00 / C90.02, Z92.850 personal history of CAR-T therapy (terminology.md §2a).
- SNOMED 58776007 autologous bone marrow transplant (terminology.md §2b); 266721009 no response
  to treatment, 407563006 treatment not tolerated (terminology.md §2c).
CAR-T administration CPT/HCPCS codes are UNVERIFIED (terminology.md §2b): CAR-T Procedures carry
text only.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from tests.redteam import builders as rb
from tests.redteam.builders import ICD10, LOINC, RX_IN, SNOMED, Patient, draft, rx, text_cc

__all__ = ["Patient", "draft", "rx", "text_cc", "LOINC", "SNOMED", "ICD10"]

ATC = rb.ATC
# ATC codes, docs/reference/terminology.md §1 (2026 WHO snapshot), as in mappings/agents.yaml
ATC_2026 = {"isatuximab": "L01FC02", "selinexor": "L01XX66", "teclistamab": "L01FX24",
            "elranatamab": "L01FX32", "talquetamab": "L01FX29", "ciltacabtagene-autoleucel": "L01XL05",
            "idecabtagene-vicleucel": "L01XL07", "daratumumab": "L01FC01"}
# Brand / name as written in EHR free text (brands: terminology.md §1, mappings/agents.yaml)
BRAND = {"lenalidomide": "Revlimid", "pomalidomide": "Pomalyst", "thalidomide": "Thalomid",
         "bortezomib": "Velcade", "carfilzomib": "Kyprolis", "ixazomib": "Ninlaro",
         "daratumumab": "Darzalex Faspro", "isatuximab": "Sarclisa", "elotuzumab": "Empliciti",
         "selinexor": "Xpovio", "teclistamab": "Tecvayli", "elranatamab": "Elrexfio", "talquetamab": "Talvey",
         "ciltacabtagene-autoleucel": "Carvykti", "idecabtagene-vicleucel": "Abecma", "venetoclax": "Venclexta",
         "dexamethasone": "Decadron", "cyclophosphamide": "Cytoxan", "bendamustine": "Bendeka",
         "melphalan": "Alkeran", "belantamab-mafodotin": "Blenrep"}
ORAL = {"lenalidomide", "pomalidomide", "thalidomide", "ixazomib", "selinexor", "venetoclax", "dexamethasone",
        "prednisone"}
# RxNorm 2619432: teclistamab-cqyv product (Tecvayli), terminology.md §1 / mappings/agents.yaml
TECLISTAMAB_PRODUCT = "2619432"


def add_days(day: str, n: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=n)).isoformat()


def concept(agent: str, style: str = "code") -> dict[str, Any]:
    """One agent as a CodeableConcept: `code` = RxNorm ingredient, else ATC + INN text, else text;
    `brand` = brand name text only (the way many order sets and outside records read)."""
    inn = agent.replace("-", " ")
    if style == "brand" and agent in BRAND:
        return text_cc(f"{BRAND[agent]} ({inn})")
    if agent in RX_IN:
        return rx(agent, text=inn)
    if agent in ATC_2026:
        return {"coding": [{"system": ATC, "code": ATC_2026[agent], "display": inn}], "text": inn}
    return text_cc(f"{BRAND.get(agent, inn)} ({inn})")


PD_TEXT = "Disease progression"


def course(p: Patient, agents: list[str], start: str, end: str | None, enc: str = "statement",
           pd: bool = False, every: int = 28, status_ongoing: str = "active", brand: bool = False,
           stop_reason: tuple[str, str] | None = None) -> None:
    """A regimen given from `start` to `end` (None = ongoing), in one of three encodings:
    - `statement`: one MedicationStatement per agent with effectivePeriod;
    - `request`: one MedicationRequest per agent per cycle, boundsPeriod over the cycle (Epic-like);
    - `mar`: infused/injected agents as one MedicationAdministration per cycle day 1 (infusion-room
      MAR), oral agents as monthly MedicationRequests.
    `pd`: the last record says it stopped for progression (statusReason text + SNOMED 266721009)."""
    style = "brand" if brand else "code"
    reason_text = PD_TEXT if pd else (stop_reason[1] if stop_reason else None)
    reason_code = ("266721009", "No response to treatment") if pd else stop_reason
    if enc == "statement":
        for a in agents:
            status = status_ongoing if end is None else ("stopped" if (pd or stop_reason) else "completed")
            p.statement(concept(a, style), start, end, status=status, reason_text=reason_text,
                        reason_code=reason_code)
        return
    last = end or "2026-10-25"
    starts = []
    s = start
    while s <= last:
        starts.append(s)
        s = add_days(s, every)
    for a in agents:
        for i, cs in enumerate(starts):
            final = i == len(starts) - 1
            ce = min(add_days(cs, every - 1), last) if end else add_days(cs, every - 1)
            if enc == "mar" and a not in ORAL:
                p.administration(concept(a, style), when=f"{cs}T09:30:00Z")
                continue
            if end is None and final:
                st = status_ongoing
            elif final and (pd or stop_reason):
                st = "stopped"
            else:
                st = "completed"
            p.request(concept(a, style), cs, status=st, bounds=(cs, ce), course="continuous",
                      reason_text=reason_text if final and end else None,
                      reason_code=reason_code if final and end else None)


def car_t(p: Patient, agent: str, when: str, enc: str) -> None:
    """A CAR-T infusion (one-time therapy) as a Procedure (text only: no verified CPT/HCPCS code),
    a MedicationAdministration (ATC L01XL05/L01XL07 + brand), or a MedicationStatement (brand text)."""
    brand, inn = BRAND[agent], agent.replace("-", " ")
    if enc == "procedure":
        p.add({"resourceType": "Procedure", "status": "completed",
               "code": {"text": f"CAR-T cell infusion: {inn} ({brand})"}, "performedDateTime": when})
    elif enc == "administration":
        p.administration({"coding": [{"system": ATC, "code": ATC_2026[agent], "display": inn}],
                          "text": f"{brand} ({inn}) single infusion"}, when=f"{when}T11:00:00Z")
    elif enc == "statement":
        p.statement(text_cc(brand), when, when, status="completed")
    else:
        raise ValueError(enc)


def car_t_history_condition(p: Patient, recorded: str) -> None:
    # ICD-10-CM Z92.850 Personal history of Chimeric Antigen Receptor T-cell therapy (terminology.md §2a)
    p.condition("Z92.850", display="Personal history of Chimeric Antigen Receptor T-cell therapy",
                recorded=recorded, status=None, verification=None)


def relapse_condition(p: Patient, onset: str) -> None:
    # ICD-10-CM C90.02 Multiple myeloma in relapse (terminology.md §2a)
    p.condition("C90.02", display="Multiple myeloma in relapse", onset=onset)


def response(p: Patient, when: str, improved: bool = True) -> None:
    """mCODE CancerDiseaseStatus: improved (268910001) or worsened (271299001)."""
    p.disease_status(when, worsened=not improved)


# ------------------------------------------------------------------------------ FISH
_VARIANT = {"coding": [{"system": LOINC, "code": "69548-6", "display": "Genetic variant assessment"}]}
_FISH_METHOD = {"coding": [{"system": SNOMED, "code": "426329006", "display": "Fluorescence in situ hybridization"}]}
_PRESENT = {"coding": [{"system": LOINC, "code": "LA9633-4", "display": "Present"}]}
_ABSENT = {"coding": [{"system": LOINC, "code": "LA9634-2", "display": "Absent"}]}
ISCN = {"del(17p)": "del(17)(p13.1)", "t(4;14)": "t(4;14)(p16;q32)", "t(14;16)": "t(14;16)(q32;q23)",
        "t(11;14)": "t(11;14)(q13;q32)", "t(14;20)": "t(14;20)(q32;q12)", "1q-gain": "+1q21",
        "del(1p)": "del(1)(p32)"}


def fish_coded(p: Patient, when: str, results: dict[str, tuple[bool, float | None]]) -> None:
    """One Genomics-Reporting Variant Observation per abnormality (the CIBMTR pattern,
    terminology.md §3b): ISCN component, presence answer, clonal fraction in 81258-6."""
    for ab, (present, pct) in results.items():
        comps: list[dict[str, Any]] = [{"code": {"coding": [{"system": LOINC, "code": "81291-7"}]},
                                        "valueCodeableConcept": {"text": ISCN[ab]}}]
        if pct is not None:
            comps.append({"code": {"coding": [{"system": LOINC, "code": "81258-6"}]},
                          "valueQuantity": {"value": pct, "unit": "%", "system": "http://unitsofmeasure.org",
                                            "code": "%"}})
        p.observation(_VARIANT, when, method=_FISH_METHOD,
                      valueCodeableConcept=_PRESENT if present else _ABSENT, component=comps)


def fish_text(p: Patient, when: str, text: str, as_report: bool = True) -> None:
    """Narrative FISH result: DiagnosticReport.conclusion, or a lab Observation's valueString."""
    if as_report:
        p.fish_report(when, text)
    else:
        p.observation({"text": "FISH plasma cell myeloma panel"}, when, valueString=text)


# ------------------------------------------------------------------------------ labs
def flc(p: Patient, when: str, chain: str, mg_per_l: float, unit: str = "mg/L") -> None:
    """Serum free light chain, LOINC 36916-5 (κ) / 33944-0 (λ); mg/dL is mg/L ÷ 10."""
    code, disp = (("36916-5", "Kappa light chains.free [Mass/volume] in Serum") if chain == "kappa"
                  else ("33944-0", "Lambda light chains.free [Mass/volume] in Serum"))
    value = mg_per_l if unit == "mg/L" else round(mg_per_l / 10, 2)
    p.observation({"coding": [{"system": LOINC, "code": code, "display": disp}]}, when,
                  valueQuantity={"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit})


# ------------------------------------------------------------------------------ standard histories
def vrd_asct_len_maintenance(p: Patient, enc: str, dx: str = "2021-01-10", pd_on_len: str | None = "2026-08-20",
                             dara: bool = False, len_end: str | None = None, brand: bool = False,
                             dara_maintenance: bool = True) -> None:
    """Frontline: (D-)VRd x4 → melphalan 200 + ASCT → (D-)R maintenance. One line (IMWG).
    `pd_on_len`: maintenance stopped for progression on that date (lenalidomide-refractory).
    `dara` with `dara_maintenance=False`: daratumumab in induction only, lenalidomide alone after."""
    ind = ["bortezomib", "lenalidomide", "dexamethasone"] + (["daratumumab"] if dara else [])
    ind_start = add_days(dx, 10)
    course(p, ind, ind_start, add_days(ind_start, 4 * 21 - 1), enc, every=21, brand=brand)
    mel = add_days(ind_start, 4 * 21 + 50)
    p.administration(rx("melphalan", text="melphalan 200 mg/m2 IV (conditioning)"), when=f"{mel}T08:00:00Z")
    p.asct(add_days(mel, 2))
    maint_start = add_days(mel, 100)
    maint = ["lenalidomide"] + (["daratumumab"] if dara and dara_maintenance else [])
    if pd_on_len:
        course(p, maint, maint_start, add_days(pd_on_len, -3), enc, pd=True, every=28, brand=brand)
        p.disease_status(pd_on_len)
    elif len_end:
        course(p, maint, maint_start, len_end, enc, every=28, brand=brand,
               stop_reason=("407563006", "Treatment not tolerated"))
    else:
        course(p, maint, maint_start, None, enc, every=28, brand=brand)


# ------------------------------------------------------------------------------ reading the answer
EXT = "org.mmcds.card"


def ext(card: dict[str, Any]) -> dict[str, Any]:
    return card.get("extension", {}).get(EXT, {})


def of_kind(cards: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [c for c in cards if ext(c).get("kind") == kind]


def state_of(cards: list[dict[str, Any]]) -> dict[str, Any]:
    """The state object of the one state card ({} when there is not exactly one: the caller checks)."""
    st = of_kind(cards, "state")
    return ext(st[0]).get("state", {}) if len(st) == 1 else {}


def options_of(cards: list[dict[str, Any]]) -> dict[str, Any]:
    """The extension of the one options card ({} when there is not exactly one)."""
    opt = of_kind(cards, "options")
    return ext(opt[0]) if len(opt) == 1 else {}


def tiers(opt: dict[str, Any]) -> dict[str, str]:
    return {o["regimen"]: o["tier"] for o in opt.get("options", [])}


def ranks(opt: dict[str, Any]) -> dict[str, int]:
    return {o["regimen"]: o.get("rank", 999) for o in opt.get("options", [])}


def avoid_of(opt: dict[str, Any]) -> set[str]:
    return {a["regimen"] for a in opt.get("avoid", [])}


def finding_codes(cards: list[dict[str, Any]]) -> set[str]:
    return {ext(c).get("code") for c in of_kind(cards, "finding")}


def notice_codes(cards: list[dict[str, Any]]) -> set[str]:
    return {ext(c).get("code") for c in of_kind(cards, "notice")}


def findings_with(cards: list[dict[str, Any]], code: str) -> list[dict[str, Any]]:
    return [ext(c) for c in of_kind(cards, "finding") if ext(c).get("code") == code]


def card_text(card: dict[str, Any]) -> str:
    parts = [card.get("summary", ""), card.get("detail", "") or ""]
    parts += [lk.get("label", "") for lk in card.get("links", []) or []]
    parts += [s.get("label", "") for s in card.get("suggestions", []) or []]
    return "\n".join(parts)


# regimen letters (CONTRACT vocabulary) → agents; named non-letter codes listed whole
_LETTERS = [("Isa", "isatuximab"), ("Elo", "elotuzumab"), ("Ven", "venetoclax"), ("Pano", "panobinostat"),
            ("D", "daratumumab"), ("K", "carfilzomib"), ("V", "bortezomib"), ("I", "ixazomib"),
            ("R", "lenalidomide"), ("P", "pomalidomide"), ("T", "thalidomide"), ("S", "selinexor"),
            ("C", "cyclophosphamide"), ("M", "melphalan"), ("d", "dexamethasone")]
NAMED = {"cilta-cel": {"ciltacabtagene-autoleucel"}, "ide-cel": {"idecabtagene-vicleucel"},
         "teclistamab": {"teclistamab"}, "elranatamab": {"elranatamab"}, "linvoseltamab": {"linvoseltamab"},
         "talquetamab": {"talquetamab"}, "belantamab": {"belantamab-mafodotin"},
         "BVd": {"belantamab-mafodotin", "bortezomib", "dexamethasone"},
         "BPd": {"belantamab-mafodotin", "pomalidomide", "dexamethasone"},
         "Tec-Dara": {"teclistamab", "daratumumab"}, "VMP": {"bortezomib", "melphalan", "prednisone"},
         "VDT-PACE": {"bortezomib", "dexamethasone", "thalidomide", "cisplatin", "doxorubicin",
                      "cyclophosphamide", "etoposide"}}
BCMA_REGIMENS = {"cilta-cel", "ide-cel", "teclistamab", "elranatamab", "linvoseltamab", "belantamab", "BVd", "BPd",
                 "Tec-Dara"}
CARFILZOMIB_TRIPLETS = {"KRd", "DKd", "IsaKd", "KPd", "SKd"}
PIS = {"bortezomib", "carfilzomib", "ixazomib"}


def regimen_agents(code: str) -> set[str]:
    if code in NAMED:
        return set(NAMED[code])
    out, i = set(), 0
    while i < len(code):
        for prefix, agent in _LETTERS:
            if code.startswith(prefix, i):
                out.add(agent)
                i += len(prefix)
                break
        else:
            return set()
    return out


_AGENT_WORDS = {
    "lenalidomide": ["lenalidomide", "revlimid"], "pomalidomide": ["pomalidomide", "pomalyst", "imnovid"],
    "thalidomide": ["thalidomide", "thalomid"], "bortezomib": ["bortezomib", "velcade"],
    "carfilzomib": ["carfilzomib", "kyprolis"], "ixazomib": ["ixazomib", "ninlaro"],
    "daratumumab": ["daratumumab", "darzalex"], "isatuximab": ["isatuximab", "sarclisa"],
    "elotuzumab": ["elotuzumab", "empliciti"], "selinexor": ["selinexor", "xpovio"],
    "dexamethasone": ["dexamethasone", "decadron"], "cyclophosphamide": ["cyclophosphamide"],
    "melphalan": ["melphalan"], "venetoclax": ["venetoclax", "venclexta"],
    "belantamab-mafodotin": ["belantamab", "blenrep"], "teclistamab": ["teclistamab", "tecvayli"],
    "talquetamab": ["talquetamab", "talvey"], "elranatamab": ["elranatamab", "elrexfio"],
    "ciltacabtagene-autoleucel": ["ciltacabtagene", "carvykti"], "idecabtagene-vicleucel": ["idecabtagene", "abecma"],
}
_CODE_AGENT = {v: k for k, v in RX_IN.items()}


def agents_in_order(res: dict[str, Any]) -> set[str]:
    """Agents a (draft or suggested) MedicationRequest names: RxNorm ingredient code or name/brand words."""
    cc = res.get("medicationCodeableConcept") or {}
    found = {_CODE_AGENT[c["code"]] for c in cc.get("coding", []) if c.get("code") in _CODE_AGENT}
    words = " ".join([cc.get("text", "")] + [c.get("display", "") for c in cc.get("coding", [])]).lower()
    for agent, names in _AGENT_WORDS.items():
        if any(re.search(rf"\b{n}\b", words) for n in names):
            found.add(agent)
    return found


def apply_suggestion(drafts: list[dict[str, Any]], suggestion: dict[str, Any]) -> list[dict[str, Any]]:
    """What the order basket holds after the clinician accepts a suggestion (delete + create actions)."""
    deleted: set[str] = set()
    created: list[dict[str, Any]] = []
    for act in suggestion.get("actions", []):
        if act.get("type") == "delete":
            ids = act.get("resourceId") or []
            deleted.update([ids] if isinstance(ids, str) else ids)
        elif act.get("type") == "create":
            created.append(act["resource"])
    kept = [d for d in drafts if f"{d['resourceType']}/{d['id']}" not in deleted]
    return kept + created
