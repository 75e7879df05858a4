"""Generate the clinical vignettes: fixture CDS Hooks requests (fixtures/patients/) and their expected
outcomes (tests/vignettes/expected.yaml).

Why a generator: the hidden test patients come in the many encodings real EHRs use. Writing each
patient as a small Python timeline and rendering it through interchangeable encoders (RxNorm
ingredient / product codes, ATC old and new, local codes, text with brands; MedicationStatement,
MedicationRequest per cycle, MedicationAdministration per dose; contained or referenced Medication)
varies the encodings systematically while the clinical story, and so the expected outcome, stays fixed.

The expectations are derived by hand from /work/shared/CLINICAL_LOGIC.md and CONTRACT.md (each with
a `why`), independently of the service code. Where the logic is ambiguous nothing is asserted.

Run: `python tools/make_vignettes.py` (from the repo root). Output is deterministic.

Code sources (house rule: every clinical code is named with its source):
- RxNorm ingredient / product codes: /work/shared/reference/drug_codes.json and
  cibmtr_rxnorm_valuesets.fsh (NMDP/CIBMTR FHIR IG value sets).
- ATC codes (new L01F.., old L01XC..): drug_codes.json (WHO ATC 2026-04-25 and 2021-12-03 snapshots).
- SNOMED 109989006 MM, 277577000 MGUS, 413587002 smoldering, 95210003 PCL, 234336002 HSCT,
  58776007 auto BMT, 426329006 FISH, 266721009 no response, 407563006 not tolerated,
  271299001 / 268910001 / 359746009 condition worsened / improved / stable: terminology.md §2.
- ICD-10-CM C90.00/C90.02/C90.10/C90.12/C90.20, D47.2, G62.0 (drug-induced polyneuropathy),
  E11.9, C50.911: CMS ICD-10-CM April-2026 tabular as shipped in PyPI simple-icd-10-cm 1.5.0.
- CPT 38241: terminology.md §2b.
- LOINC 97509-4, 33358-3, 89247-1, 69548-6, 81291-7, 48018-6, 48001-2, 48002-0, LA6684-0:
  terminology.md §3. LA9633-4 Present / LA9634-2 Absent (answer list LL1971-2): GR-IG variant
  value mapping in public code (e.g. a genomics-to-FHIR converter's _FHIR_VALUES table).
- HGNC:11998 TP53: terminology.md §3b.
- Synthea (shared/data/synthea-10): aspirin 81 mg 243670, metformin ER 860975, SNOMED 44054006
  type 2 diabetes, 254837009 malignant neoplasm of breast, paclitaxel 100 mg injection 583214,
  sulfamethoxazole/trimethoprim 10831 (AllergyIntolerance list).
Supportive drugs without a sourced code (acyclovir, ondansetron...) are sent as text only.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "patients"
EXPECTED = ROOT / "tests" / "vignettes" / "expected.yaml"
AS_OF = "2026-11-01"
FHIR_PLACEHOLDER = "http://localhost/fhir"

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ATC = "http://www.whocc.no/atc"
CPT = "http://www.ama-assn.org/go/cpt"
HGNC = "http://www.genenames.org/geneId"
ISCN = "https://iscn.karger.com"
LOCAL_FORMULARY = "http://hospital.example.org/fhir/CodeSystem/formulary"
COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"

# ---------------------------------------------------------------------------------------------
# Drug catalog for the encoders (codes only from drug_codes.json / cibmtr_rxnorm_valuesets.fsh)
# ---------------------------------------------------------------------------------------------
DRUGS: dict[str, dict[str, Any]] = {
    "lenalidomide": {"in": "342369", "atc": "L04AX04",
                     "products": {"25": ("643722", "lenalidomide 25 MG Oral Capsule [Revlimid]"),
                                  "25g": ("643720", "lenalidomide 25 MG Oral Capsule"),
                                  "10": ("616114", "lenalidomide 10 MG Oral Capsule [Revlimid]"),
                                  "10g": ("602910", "lenalidomide 10 MG Oral Capsule"),
                                  "15": ("643714", "lenalidomide 15 MG Oral Capsule [Revlimid]")},
                     "text": "Revlimid 10 mg capsule"},
    "pomalidomide": {"in": "1369713", "atc": "L04AX06", "text": "Pomalyst 4 mg capsule"},
    "thalidomide": {"in": "10432", "atc": "L04AX02", "text": "Thalomid 100 mg capsule"},
    "bortezomib": {"in": "358258", "atc": "L01XG01",
                   "products": {"inj": ("1804997", "bortezomib Injection [Velcade]"),
                                "3.5": ("402244", "bortezomib 3.5 MG Injection [Velcade]")},
                   "text": "Velcade 1.3 mg/m2 SC"},
    "carfilzomib": {"in": "1302966", "atc": "L01XG02",
                    "products": {"60": ("1806942", "carfilzomib 60 MG Injection [Kyprolis]")},
                    "text": "Kyprolis 56 mg/m2 IV"},
    "ixazomib": {"in": "1723735", "atc": "L01XG03",
                 "products": {"4": ("1723772", "ixazomib 4 MG Oral Capsule [Ninlaro]")},
                 "text": "Ninlaro 4 mg capsule"},
    "daratumumab": {"in": "1721947", "atc": "L01FC01", "atc_old": "L01XC24",
                    "products": {"iv": ("1721954", "daratumumab Injection [Darzalex]")},
                    "text": "DARZALEX 16 mg/kg IV"},
    "daratumumab-sc": {"in": "2372199", "in_display": "daratumumab / hyaluronidase", "atc": "L01FC01",
                       "atc_old": "L01XC24",
                       "products": {"sc": ("2375139", "daratumumab / hyaluronidase Injection [Darzalex Faspro]")},
                       "text": "Darzalex Faspro 1800 mg SC"},
    "isatuximab": {"in": None, "atc": "L01FC02", "atc_old": "L01XC38", "text": "Sarclisa (isatuximab-irfc) 10 mg/kg IV"},
    "elotuzumab": {"in": "1726104", "atc": "L01FX08", "atc_old": "L01XC23", "text": "Empliciti 10 mg/kg IV"},
    "selinexor": {"in": None, "atc": "L01XX66", "text": "XPOVIO (selinexor) 20 mg tablet"},
    # teclistamab: no verified ingredient RXCUI; 2619432 is a verified product-level RXCUI (drug_codes.json,
    # openFDA NDC 57894-449); its display is not given there, so none is sent
    "teclistamab": {"in": None, "atc": "L01FX24", "products": {"sc": ("2619432", None)},
                    "text": "Tecvayli (teclistamab-cqyv) 1.5 mg/kg SC"},
    "venetoclax": {"in": "1747556", "atc": "L01XX52", "text": "Venclexta 100 mg tablet"},
    "melphalan": {"in": "6718", "atc": "L01AA03", "text": "Evomela (melphalan) 200 mg/m2 IV"},
    "cyclophosphamide": {"in": "3002", "atc": "L01AA01", "text": "cyclophosphamide 300 mg/m2"},
    "doxorubicin": {"in": "3639", "atc": "L01DB01", "text": "doxorubicin 60 mg/m2 IV"},
    "dexamethasone": {"in": "3264", "atc": "H02AB02", "text": "dexamethasone 40 mg tablet"},
    "prednisone": {"in": "8640", "atc": "H02AB07", "text": "prednisone 60 mg/m2"},
}
INN_DISPLAY = {"daratumumab-sc": "daratumumab / hyaluronidase"}

# supportive / non-myeloma drugs: Synthea codes or text only
ASPIRIN = {"coding": [{"system": RXNORM, "code": "243670", "display": "Aspirin 81 MG Oral Tablet"}],
           "text": "Aspirin 81 MG Oral Tablet"}  # Synthea
ACYCLOVIR = {"text": "Acyclovir 400 mg tablet"}  # no sourced code: text only
ONDANSETRON = {"text": "Ondansetron 8 mg tablet"}
TMP_SMX = {"coding": [{"system": RXNORM, "code": "10831", "display": "Sulfamethoxazole / Trimethoprim"}],
           "text": "Sulfamethoxazole / Trimethoprim 800/160 mg"}  # Synthea
METFORMIN = {"coding": [{"system": RXNORM, "code": "860975",
                         "display": "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"}]}  # Synthea
PACLITAXEL = {"coding": [{"system": RXNORM, "code": "583214", "display": "PACLitaxel 100 MG Injection"}]}  # Synthea


def d(s: str) -> date:
    return date.fromisoformat(s)


def iso(x: date | str) -> str:
    return x if isinstance(x, str) else x.isoformat()


def concept(agent: str, enc: str, product: str | None = None, text: str | None = None) -> dict[str, Any]:
    """A CodeableConcept for `agent` in one of the encodings real EHRs send."""
    info = DRUGS[agent]
    name = INN_DISPLAY.get(agent, agent)
    if enc == "rx-in":
        assert info["in"], agent
        return {"coding": [{"system": RXNORM, "code": info["in"], "display": info.get("in_display", name)}],
                "text": text or name}
    if enc == "rx-product":
        code, disp = info["products"][product or next(iter(info["products"]))]
        coding = {"system": RXNORM, "code": code, **({"display": disp} if disp else {})}
        return {"coding": [coding], "text": text or disp or info["text"]}
    if enc == "atc":
        return {"coding": [{"system": ATC, "code": info["atc"], "display": name}], "text": text or name}
    if enc == "atc-old":
        return {"coding": [{"system": ATC, "code": info["atc_old"], "display": name}], "text": text or name}
    if enc == "local":
        # a local formulary code that only carries a display (what many EHR exports send)
        local_code = f"FRM-{agent[:4].upper()}-{len(text or info['text'])}"
        return {"coding": [{"system": LOCAL_FORMULARY, "code": local_code, "display": text or info["text"].upper()}]}
    if enc == "text":
        return {"text": text or info["text"]}
    raise ValueError(enc)


# ---------------------------------------------------------------------------------------------
# Patient builder
# ---------------------------------------------------------------------------------------------
PREFETCH_KEYS = ("patient", "conditions", "observations", "diagnosticReports", "procedures",
                 "medicationStatements", "medicationRequests", "medicationAdministrations")


@dataclass
class Vignette:
    key: str
    pid: str
    birth: str
    gender: str
    description: str
    res: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in PREFETCH_KEYS[1:]})
    includes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in PREFETCH_KEYS[1:]})
    outcomes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # search.mode "outcome" entries
    n: int = 0
    expect: dict[str, Any] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)
    variants: list[dict[str, Any]] = field(default_factory=list)  # same patient under another app config

    # ------------------------------------------------------------------ basics
    def nid(self, prefix: str) -> str:
        self.n += 1
        return f"{self.pid}-{prefix}-{self.n}"

    @property
    def subject(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.pid}"}

    def patient(self) -> dict[str, Any]:
        return {"resourceType": "Patient", "id": self.pid, "active": True, "gender": self.gender,
                "birthDate": self.birth, "name": [{"family": "Vignette", "given": [self.key.split("-")[0].upper()]}]}

    def _med_fields(self, agent: str, enc: str, how: str, product: str | None, text: str | None,
                    into: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """medication[x] fields: codeable concept, contained Medication (#id) or a Medication resource."""
        cc = concept(agent, enc, product, text)
        if how == "cc":
            return {"medicationCodeableConcept": cc}, []
        if how == "contained":
            return {"contained": [{"resourceType": "Medication", "id": "med", "code": cc}],
                    "medicationReference": {"reference": "#med"}}, []
        if how == "ref":
            mid = f"{self.pid}-med-{agent}-{enc}"
            if not any(m["id"] == mid for m in self.includes[into]):
                self.includes[into].append({"resourceType": "Medication", "id": mid, "code": cc})
            return {"medicationReference": {"reference": f"Medication/{mid}"}}, []
        raise ValueError(how)

    # ------------------------------------------------------------- medications
    def statement(self, agent: str, start: str, end: str | None = None, status: str | None = None,
                  enc: str = "rx-in", how: str = "cc", product: str | None = None, text: str | None = None,
                  reason: str | None = None, dosage: str | None = None) -> dict[str, Any]:
        """MedicationStatement with effectivePeriod (+ statusReason: 'progression' | 'toxicity')."""
        med, _ = self._med_fields(agent, enc, how, product, text, "medicationStatements")
        r: dict[str, Any] = {"resourceType": "MedicationStatement", "id": self.nid("ms"),
                             "status": status or ("completed" if end else "active"), **med,
                             "subject": self.subject,
                             "effectivePeriod": {"start": start, **({"end": end} if end else {})},
                             "dateAsserted": end or start}
        if reason:
            r["statusReason"] = [status_reason(reason)]
        if dosage:
            r["dosage"] = [{"text": dosage}]
        # contained must come before the other content only by convention; order is irrelevant in JSON
        self.res["medicationStatements"].append(r)
        return r

    def supportive(self, cc: dict[str, Any], start: str, end: str | None = None) -> None:
        self.res["medicationStatements"].append({
            "resourceType": "MedicationStatement", "id": self.nid("ms"), "status": "active" if not end else "completed",
            "medicationCodeableConcept": cc, "subject": self.subject,
            "effectivePeriod": {"start": start, **({"end": end} if end else {})}})

    def cycles(self, agents: list[tuple[str, str, str | None, str | None]], start: str, n: int, days: int,
               how: str = "cc", last_status: str = "completed", last_reason: str | None = None,
               last_end: str | None = None, dosage: dict[str, str] | None = None, active_last: bool = False) -> str:
        """One MedicationRequest per cycle and agent, with authoredOn and a boundsPeriod.

        `agents` items: (agent, encoding, product, text). Returns the end date of the last cycle.
        """
        s = d(start)
        end = s
        for i in range(n):
            cs, ce = s + timedelta(days=i * days), s + timedelta(days=(i + 1) * days - 1)
            is_last = i == n - 1
            if is_last and last_end:
                ce = d(last_end)
            end = ce
            for agent, enc, product, text in agents:
                med, _ = self._med_fields(agent, enc, how, product, text, "medicationRequests")
                status = "completed"
                if is_last:
                    status = "active" if active_last else last_status
                r: dict[str, Any] = {
                    "resourceType": "MedicationRequest", "id": self.nid("mr"), "status": status, "intent": "order",
                    **med, "subject": self.subject, "authoredOn": iso(cs - timedelta(days=2)),
                    "dosageInstruction": [{
                        "text": (dosage or {}).get(agent, f"cycle {i + 1}"),
                        "timing": {"repeat": {"boundsPeriod": {"start": iso(cs), "end": iso(ce)}}}}],
                }
                if is_last and last_reason:
                    r["statusReason"] = status_reason(last_reason)
                self.res["medicationRequests"].append(r)
        return iso(end)

    def administrations(self, agent: str, dates: list[date], enc: str = "rx-in", how: str = "cc",
                        product: str | None = None, text: str | None = None, route: str | None = None) -> None:
        """One MedicationAdministration per dose."""
        for dt in dates:
            med, _ = self._med_fields(agent, enc, how, product, text, "medicationAdministrations")
            r: dict[str, Any] = {"resourceType": "MedicationAdministration", "id": self.nid("ma"),
                                 "status": "completed", **med, "subject": self.subject,
                                 "effectiveDateTime": f"{iso(dt)}T09:30:00Z"}
            if route:
                r["dosage"] = {"route": {"text": route}}
            self.res["medicationAdministrations"].append(r)

    # -------------------------------------------------------------- conditions
    def condition(self, codings: list[tuple[str, str, str]], onset: str, text: str,
                  clinical: str = "active") -> dict[str, Any]:
        r = {"resourceType": "Condition", "id": self.nid("cond"),
             "clinicalStatus": {"coding": [{"system": COND_CLINICAL, "code": clinical}]},
             "verificationStatus": {"coding": [{"system": COND_VER, "code": "confirmed"}]},
             "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                       "code": "problem-list-item"}]}],
             "code": {"coding": [{"system": s, "code": c, "display": disp} for s, c, disp in codings], "text": text},
             "subject": self.subject, "onsetDateTime": onset, "recordedDate": onset}
        self.res["conditions"].append(r)
        return r

    def mm(self, onset: str, style: str = "snomed") -> None:
        if style == "snomed":
            self.condition([(SNOMED, "109989006", "Multiple myeloma (disorder)")], onset, "Multiple myeloma")
        elif style == "icd":
            self.condition([(ICD10CM, "C90.00", "Multiple myeloma not having achieved remission")], onset,
                           "Multiple myeloma")
        else:
            self.condition([(SNOMED, "109989006", "Multiple myeloma (disorder)"),
                            (ICD10CM, "C90.00", "Multiple myeloma not having achieved remission")], onset,
                           "Multiple myeloma")

    def relapse_c9002(self, onset: str) -> None:
        self.condition([(ICD10CM, "C90.02", "Multiple myeloma in relapse")], onset, "Multiple myeloma in relapse")

    def relapse_status(self, onset: str) -> None:
        """Progression recorded as a Condition whose clinicalStatus is relapse, with its onset."""
        self.condition([(SNOMED, "109989006", "Multiple myeloma (disorder)")], onset, "Multiple myeloma, relapsed",
                       clinical="relapse")

    # ------------------------------------------------------------ observations
    def obs(self, code: tuple[str, str, str], when: str, category: str, **value: Any) -> dict[str, Any]:
        r: dict[str, Any] = {"resourceType": "Observation", "id": self.nid("obs"), "status": "final",
                             "category": [{"coding": [{"system": OBS_CAT, "code": category}]}],
                             "code": {"coding": [{"system": code[0], "code": code[1], "display": code[2]}],
                                      "text": code[2]},
                             "subject": self.subject, "effectiveDateTime": when, **value}
        self.res["observations"].append(r)
        return r

    def disease_status(self, when: str, status: str) -> None:
        """mCODE CancerDiseaseStatus, LOINC 97509-4 (values: terminology.md §2c)."""
        values = {"worsened": ("271299001", "Patient's condition worsened"),
                  "improved": ("268910001", "Patient's condition improved"),
                  "stable": ("359746009", "Patient's condition stable")}
        code, disp = values[status]
        self.obs((LOINC, "97509-4", "Cancer disease status"), when, "exam",
                 valueCodeableConcept={"coding": [{"system": SNOMED, "code": code, "display": disp}], "text": disp})

    def m_protein(self, series: list[tuple[str, float]]) -> None:
        for when, value in series:
            self.obs((LOINC, "33358-3", "Protein.monoclonal [Mass/volume] in Serum or Plasma by Electrophoresis"),
                     when, "laboratory",
                     valueQuantity={"value": value, "unit": "g/dL", "system": "http://unitsofmeasure.org",
                                    "code": "g/dL"})

    def ecog(self, when: str, score: int) -> None:
        self.obs((LOINC, "89247-1", "ECOG Performance Status score"), when, "survey", valueInteger=score)

    def fish_variant(self, when: str, iscn: str, present: bool, text: str, gene: str | None = None,
                     location: str | None = None) -> None:
        """Genomics Reporting IG Variant: 69548-6, Present/Absent, ISCN in 81291-7, method FISH."""
        comps: list[dict[str, Any]] = [{
            "code": {"coding": [{"system": LOINC, "code": "81291-7", "display": "Variant ISCN"}]},
            "valueCodeableConcept": {"coding": [{"system": ISCN, "code": iscn}], "text": text}}]
        if gene == "TP53":
            comps.append({"code": {"coding": [{"system": LOINC, "code": "48018-6", "display": "Gene studied [ID]"}]},
                          "valueCodeableConcept": {"coding": [{"system": HGNC, "code": "HGNC:11998",
                                                               "display": "TP53"}]}})
        if location:
            comps.append({"code": {"coding": [{"system": LOINC, "code": "48001-2",
                                               "display": "Cytogenetic (chromosome) location"}]},
                          "valueCodeableConcept": {"text": location}})
        comps.append({"code": {"coding": [{"system": LOINC, "code": "48002-0", "display": "Genomic source class"}]},
                      "valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA6684-0",
                                                           "display": "Somatic"}]}})
        value = ({"system": LOINC, "code": "LA9633-4", "display": "Present"} if present
                 else {"system": LOINC, "code": "LA9634-2", "display": "Absent"})
        self.obs((LOINC, "69548-6", "Genetic variant assessment"), when, "laboratory",
                 valueCodeableConcept={"coding": [value]},
                 method={"coding": [{"system": SNOMED, "code": "426329006",
                                     "display": "Fluorescence in situ hybridization"}]},
                 component=comps)

    def fish_report(self, when: str, conclusion: str) -> None:
        """A free-text FISH report (no LOINC for MM FISH panels is verified: text code only)."""
        self.res["diagnosticReports"].append({
            "resourceType": "DiagnosticReport", "id": self.nid("dr"), "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "CG"}]}],
            "code": {"text": "FISH, plasma cell myeloma panel (CD138-enriched bone marrow)"},
            "subject": self.subject, "effectiveDateTime": when, "issued": f"{when}T16:00:00Z",
            "conclusion": conclusion})

    # -------------------------------------------------------------- procedures
    def transplant(self, when: str, style: str) -> None:
        codes = {"58776007": (SNOMED, "58776007", "Autologous bone marrow transplant (procedure)"),
                 "234336002": (SNOMED, "234336002", "Hemopoietic stem cell transplant (procedure)"),
                 "38241": (CPT, "38241", "Hematopoietic progenitor cell (HPC); autologous transplantation")}
        system, code, disp = codes[style]
        r: dict[str, Any] = {"resourceType": "Procedure", "id": self.nid("proc"), "status": "completed",
                             "code": {"coding": [{"system": system, "code": code, "display": disp}],
                                      "text": "Autologous stem cell transplant"},
                             "subject": self.subject}
        if style == "234336002":
            r["performedPeriod"] = {"start": when, "end": when}
        else:
            r["performedDateTime"] = when
        self.res["procedures"].append(r)

    # ------------------------------------------------------------------ output
    def prefetch(self) -> dict[str, Any]:
        out: dict[str, Any] = {"patient": self.patient()}
        for key in PREFETCH_KEYS[1:]:
            matches, incs = self.res[key], self.includes[key]
            entry = [{"fullUrl": f"{FHIR_PLACEHOLDER}/{r['resourceType']}/{r['id']}", "resource": r,
                      "search": {"mode": "match"}} for r in matches]
            entry += [{"fullUrl": f"{FHIR_PLACEHOLDER}/Medication/{m['id']}", "resource": m,
                       "search": {"mode": "include"}} for m in incs]
            entry += [{"resource": oo, "search": {"mode": "outcome"}} for oo in self.outcomes.get(key, [])]
            b: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(matches)}
            if entry:
                b["entry"] = entry
            out[key] = b
        return out

    def request(self, hook: str, suffix: str, context_extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "hookInstance": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mmcds-vignette/{self.key}/{hook}/{suffix}")),
            "hook": hook,
            "fhirServer": FHIR_PLACEHOLDER,
            "context": {"userId": "Practitioner/vignette-hematologist", "patientId": self.pid,
                        **(context_extra or {})},
            "prefetch": self.prefetch(),
        }

    # ------------------------------------------------------------------ orders
    def draft_med(self, oid: str, agent: str | None, enc: str = "rx-in", product: str | None = None,
                  text: str | None = None, dosage: str = "", route: str | None = None,
                  cc: dict[str, Any] | None = None) -> dict[str, Any]:
        r: dict[str, Any] = {"resourceType": "MedicationRequest", "id": oid, "status": "draft", "intent": "order",
                             "medicationCodeableConcept": cc if cc is not None else concept(agent or "", enc, product, text),
                             "subject": self.subject, "authoredOn": AS_OF}
        di: dict[str, Any] = {"text": dosage or "as directed"}
        if route:
            di["route"] = {"text": route}
        r["dosageInstruction"] = [di]
        return r

    def order(self, name: str, hook: str, drafts: list[dict[str, Any]], expect: dict[str, Any],
              description: str, selections: list[str] | None = None) -> None:
        ctx: dict[str, Any] = {"draftOrders": {"resourceType": "Bundle", "type": "collection",
                                               "entry": [{"resource": r} for r in drafts]}}
        if hook == "order-select":
            ctx["selections"] = selections or [f"{r['resourceType']}/{r['id']}" for r in drafts
                                               if r["resourceType"] in ("MedicationRequest", "ServiceRequest",
                                                                        "MedicationOrder")]
        self.orders.append({"name": name, "hook": hook, "context": ctx, "expect": expect,
                            "description": description})


def status_reason(kind: str) -> dict[str, Any]:
    """mCODE TreatmentTerminationReasonVS codes (terminology.md §2c)."""
    if kind == "progression":
        return {"coding": [{"system": SNOMED, "code": "266721009", "display": "No response to treatment (situation)"}],
                "text": "Disease progression"}
    if kind == "toxicity":
        return {"coding": [{"system": SNOMED, "code": "407563006", "display": "Treatment not tolerated (situation)"}],
                "text": "Stopped for toxicity"}
    raise ValueError(kind)


def dates_every(start: str, days: int, count: int) -> list[date]:
    s = d(start)
    return [s + timedelta(days=i * days) for i in range(count)]


def weekly_then(start: str, pattern: list[tuple[int, int]]) -> list[date]:
    """Dose dates: pattern of (interval_days, count) segments, e.g. dara weekly x8, q2w x8, q4w..."""
    out: list[date] = []
    cur = d(start)
    for interval, count in pattern:
        for _ in range(count):
            out.append(cur)
            cur += timedelta(days=interval)
    return out


def bortezomib_days(start: str, cycles: int, cycle_days: int = 21) -> list[date]:
    s = d(start)
    return [s + timedelta(days=c * cycle_days + off) for c in range(cycles) for off in (0, 3, 7, 10)]


# ---------------------------------------------------------------------------------------------
# Expectation helpers
# ---------------------------------------------------------------------------------------------
LEN_REGIMENS = ["DRd", "KRd", "IRd", "EloRd", "Rd"]
ANTI_CD38_REGIMENS = ["DRd", "DVd", "DKd", "IsaKd", "DPd", "IsaPd"]
NAIVE3 = {"IMiD": "naive", "PI": "naive", "anti-CD38": "naive"}


def no_cyto() -> dict[str, Any]:
    return {"tested": False, "highRisk": None, "findings": [], "t11_14": None}


def state(**kw: Any) -> dict[str, Any]:
    """Expected state fields; omitted keys are not asserted."""
    base = {"multipleMyeloma": True, "plasmaCellLeukemia": False, "extramedullary": False}
    base.update(kw)
    return base


def finding(code: str, agents: list[str], orders: list[str]) -> dict[str, Any]:
    return {"code": code, "agents": agents, "orders": orders}


# ---------------------------------------------------------------------------------------------
# The vignettes
# ---------------------------------------------------------------------------------------------
def build() -> list[Vignette]:  # noqa: PLR0915 - one long, readable list of patients
    vs: list[Vignette] = []

    # P01 ---------------------------------------------------------------------------------------
    v = Vignette("p01-a-vrd-fixed-mcode", "vg-p01", "1954-05-12", "male",
                 "Setting A. VRd x8 (fixed duration, no ASCT, age 72), off therapy 2 years, progression by mCODE "
                 "CancerDiseaseStatus 'worsened' and M-protein rise. MedicationStatements, RxNorm ingredient codes.")
    v.mm("2024-01-05", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2024-01-15", "2024-07-28", enc="rx-in")
    v.m_protein([("2024-01-08", 2.1), ("2024-05-06", 0.5), ("2024-08-05", 0.3), ("2025-06-02", 0.3),
                 ("2026-09-01", 0.9), ("2026-09-21", 1.1)])
    v.disease_status("2024-05-06", "improved")
    v.disease_status("2025-06-02", "stable")
    v.disease_status("2026-09-21", "worsened")
    v.ecog("2026-09-21", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed"},
                       classes={"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"},
                       doubleRefractory=False, tripleClassExposed=False, tripleClassRefractory=False,
                       pentaRefractory=False, progressedOnLenalidomideMaintenance=False,
                       cytogenetics=no_cyto(), transplant={"priorASCT": False, "monthsAsctToProgression": None},
                       frail=False),
        "why": "VRd ended 2024-07-28, progression 2026-09 > 60 days later: all exposed (IMWG 60-day rule); "
               "1 line; no FISH -> tested false, highRisk null; ECOG 1 and 72 y -> not frail.",
        "setting": "first-relapse-len-sensitive",
        "preferred_include": ["DRd"], "avoid_exclude": ["DRd"],
        "notices_exclude": ["short-response", "high-risk-cytogenetics", "insufficient-data",
                            "plasma-cell-leukemia", "extramedullary-disease", "salvage-asct-candidate"],
        "notes": "A: DRd [1A] preferred (003, 002). Never transplanted and 72 y (> 70): not transplant-eligible. Last response 2024-01 -> 2026-09 = 32 months: not short.",
    }
    v.variants.append({
        "name": "daratumumab-unavailable", "config": {"UNAVAILABLE_AGENTS": "daratumumab"},
        "setting": "first-relapse-len-sensitive",
        "preferred_include": ["KRd"], "preferred_exclude": ["DRd", "DKd", "DVd"],
        "tiers": {"DRd": "if-unavailable"},
        "why": "CONTRACT: availability shifts options into the if-unavailable tier rather than hiding them; "
               "CLINICAL_LOGIC A: KRd [1A] where DRd is unavailable (002)."})
    v.order("o1-dkd-no-zoster", "order-select", [
        v.draft_med("draft-dara", "daratumumab-sc", "rx-product", dosage="1800 mg SC weekly", route="Subcutaneous"),
        v.draft_med("draft-cfz", "carfilzomib", "rx-in", dosage="56 mg/m2 IV days 1, 8, 15", route="Intravenous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO weekly"),
    ], {"findings_include": [finding("missing-zoster-prophylaxis", ["carfilzomib"], ["MedicationRequest/draft-cfz"])],
        "findings_exclude": ["refractory-agent-ordered", "anti-cd38-retreatment", "doublet-when-triplet-tolerated"],
        "why": "PI (carfilzomib) without acyclovir/valacyclovir in chart or drafts -> zoster prophylaxis (002); "
               "DKd is a triplet; nothing refractory; daratumumab naive."},
        "DKd drafted in an anti-CD38-naive patient with no antiviral prophylaxis.")
    vs.append(v)

    # P02 ---------------------------------------------------------------------------------------
    v = Vignette("p02-a-asct-40mo-mr-cycles", "vg-p02", "1968-03-03", "female",
                 "Setting A. VRd x4 then ASCT (CPT 38241), no maintenance; relapse 40 months after ASCT recorded as "
                 "Condition C90.02 with onset. MedicationRequest per 21-day cycle with boundsPeriod; RxNorm "
                 "product (SBD) codes.")
    v.mm("2023-01-10", "icd")
    v.cycles([("bortezomib", "rx-product", "inj", None), ("lenalidomide", "rx-product", "25", None),
              ("dexamethasone", "rx-in", None, "dexamethasone 40 mg tablet")], "2023-01-20", 4, 21)
    v.transplant("2023-06-01", "38241")
    v.disease_status("2023-09-01", "improved")
    v.relapse_c9002("2026-10-06")
    v.ecog("2026-10-06", 0)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed"},
                       classes={"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"},
                       doubleRefractory=False, tripleClassExposed=False, tripleClassRefractory=False,
                       pentaRefractory=False, progressedOnLenalidomideMaintenance=False, cytogenetics=no_cyto(),
                       transplant={"priorASCT": True, "monthsAsctToProgression": [39, 41], "salvageASCT": "candidate"},
                       frail=False),
        "why": "Induction+ASCT = 1 line; ASCT 2023-06-01 -> relapse 2026-10-06 = 40 months, no maintenance: "
               "002 (>=18) and 003 (>=24 without maintenance) agree -> candidate.",
        "setting": "first-relapse-len-sensitive",
        "preferred_include": ["DRd"],
        "notices_include": ["salvage-asct-candidate"],
        "notices_exclude": ["salvage-asct-discuss", "salvage-asct-not-recommended", "short-response"],
    }
    v.order("o1-kd-doublet-fit", "order-select", [
        v.draft_med("draft-cfz", "carfilzomib", "rx-product", "60", dosage="56 mg/m2 IV days 1, 2, 8, 9, 15, 16",
                    route="Intravenous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO days 1, 2, 8, 9, 15, 16, 22, 23"),
        v.draft_med("draft-acv", None, cc=ACYCLOVIR, dosage="400 mg PO twice daily"),
    ], {"findings_include": [finding("doublet-when-triplet-tolerated", ["carfilzomib"], ["MedicationRequest/draft-cfz"])],
        "findings_exclude": ["refractory-agent-ordered", "missing-zoster-prophylaxis"],
        "why": "Kd = one anti-myeloma agent + steroid in a fit 58-year-old (ECOG 0) -> suggest a triplet (002, 003); "
               "acyclovir is drafted with it."},
        "Kd doublet drafted for a fit patient at first relapse.")
    vs.append(v)

    # P03 ---------------------------------------------------------------------------------------
    v = Vignette("p03-b-dara-induction-mprotein-admin", "vg-p03", "1966-09-14", "male",
                 "Setting B with prior anti-CD38 exposure that is not refractory: Dara(SC)-VRd induction, ASCT "
                 "(SNOMED 58776007), lenalidomide maintenance; progression only by M-protein rise (IMWG, confirmed) "
                 "~20 months after ASCT. Daratumumab and bortezomib as MedicationAdministration per dose; full "
                 "negative FISH panel as Genomics Reporting variants.")
    v.mm("2024-05-20", "both")
    v.administrations("daratumumab-sc", weekly_then("2024-06-03", [(7, 8), (14, 4)]), enc="rx-product")
    v.administrations("bortezomib", bortezomib_days("2024-06-03", 4, 28)[:16], enc="rx-in", route="Subcutaneous")
    v.statement("lenalidomide", "2024-06-03", "2024-09-23", enc="rx-product", product="25")
    v.statement("dexamethasone", "2024-06-03", "2024-09-23", enc="rx-in")
    v.transplant("2024-12-01", "58776007")
    v.statement("lenalidomide", "2025-02-03", "2026-08-20", status="stopped", enc="rx-product", product="10",
                dosage="10 mg PO daily (maintenance)")
    for iscn, txt in (("t(4;14)(p16;q32)", "t(4;14)"), ("t(11;14)(q13;q32)", "t(11;14)"),
                      ("t(14;16)(q32;q23)", "t(14;16)"), ("del(17)(p13.1)", "del(17p)"), ("+1q21", "1q gain")):
        v.fish_variant("2024-05-24", iscn, False, txt, gene="TP53" if "17" in iscn else None)
    v.m_protein([("2024-05-20", 3.2), ("2024-10-01", 0.4), ("2025-03-03", 0.2), ("2025-09-01", 0.2),
                 ("2026-03-02", 0.3), ("2026-07-30", 0.8), ("2026-08-13", 0.9)])
    v.supportive(ASPIRIN, "2025-02-03")
    v.ecog("2026-08-13", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"daratumumab": "exposed", "bortezomib": "exposed", "lenalidomide": "refractory",
                               "dexamethasone": "exposed"},
                       classes={"IMiD": "refractory", "PI": "exposed", "anti-CD38": "exposed"},
                       doubleRefractory=False, tripleClassExposed=True, tripleClassRefractory=False,
                       pentaRefractory=False, progressedOnLenalidomideMaintenance=True,
                       cytogenetics={"tested": True, "highRisk": False, "findings": [], "t11_14": False},
                       transplant={"priorASCT": True, "monthsAsctToProgression": [19, 21], "salvageASCT": "discuss"},
                       frail=False),
        "why": "M-protein nadir 0.2 -> 0.8/0.9 g/dL (>=25 % and >=0.5 g/dL, confirmed) while on lenalidomide "
               "maintenance -> len refractory (002/003: includes maintenance); dara and bortezomib last given 2024 "
               "-> exposed; exposed to IMiD+PI+anti-CD38 -> triple-class exposed; FISH all negative -> tested, "
               "not high risk, t(11;14) false; ASCT 2024-12-01 -> ~20 months with maintenance: between 002's 18 "
               "and 003's 36 -> discuss.",
        "setting": "first-relapse-len-refractory",
        "preferred_include": ["PVd"], "preferred_exclude": LEN_REGIMENS,
        "options_include": ["DKd", "KPd"], "avoid_include": ["DRd"],
        "notices_include": ["salvage-asct-discuss"],
        "notices_exclude": ["salvage-asct-candidate", "salvage-asct-not-recommended", "high-risk-cytogenetics",
                            "short-response"],
        "notes": "Anti-CD38 exposed but not refractory: anti-CD38 regimens stay available (CLINICAL_LOGIC A/B); "
                 "KPd named by 002 'if prior daratumumab exposure'. Last line 2024-06 -> 2026-07: 26 months.",
    }
    vs.append(v)

    # P04 ---------------------------------------------------------------------------------------
    v = Vignette("p04-b-len-maint-statusreason-del17p", "vg-p04", "1964-11-02", "male",
                 "Setting B: VRd x4, ASCT (SNOMED 234336002, performedPeriod), lenalidomide maintenance stopped "
                 "with statusReason 266721009 (no response) + mCODE worsened, 30 months after ASCT. FISH variants: "
                 "del(17p) present, t(4;14) and t(11;14) absent. Active aspirin and acyclovir.")
    v.mm("2023-10-20", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2023-11-06", "2024-02-26", enc="rx-in")
    v.transplant("2024-04-01", "234336002")
    v.statement("lenalidomide", "2024-06-03", "2026-10-08", status="stopped", enc="rx-in", reason="progression",
                dosage="10 mg PO daily days 1-28 (maintenance)")
    v.fish_variant("2023-10-25", "del(17)(p13.1)", True, "del(17p) TP53 loss", gene="TP53", location="17p13.1")
    v.fish_variant("2023-10-25", "t(4;14)(p16;q32)", False, "t(4;14)")
    v.fish_variant("2023-10-25", "t(11;14)(q13;q32)", False, "t(11;14)")
    v.disease_status("2024-07-01", "improved")
    v.disease_status("2026-10-06", "worsened")
    v.supportive(ASPIRIN, "2024-06-03")
    v.supportive(ACYCLOVIR, "2023-11-06")
    v.ecog("2026-10-06", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "refractory", "dexamethasone": "exposed"},
                       classes={"IMiD": "refractory", "PI": "exposed", "anti-CD38": "naive"},
                       doubleRefractory=False, tripleClassExposed=False, tripleClassRefractory=False,
                       pentaRefractory=False, progressedOnLenalidomideMaintenance=True,
                       cytogenetics={"tested": True, "highRisk": True, "findings": ["del(17p)"], "t11_14": False},
                       transplant={"priorASCT": True, "monthsAsctToProgression": [29, 31], "salvageASCT": "discuss"},
                       frail=False),
        "why": "Progression 2026-10-06 on lenalidomide maintenance -> len refractory (002/003); bortezomib/dex "
               "stopped 2024-02 -> exposed; del(17p) -> high risk; t(11;14) documented absent -> false; "
               "ASCT -> progression 30 months with maintenance: >=18 (002) but <36 (003) -> discuss.",
        "setting": "first-relapse-len-refractory",
        "preferred_include": ["PVd"], "preferred_exclude": LEN_REGIMENS,
        "options_exclude": ["VenVd"], "avoid_include": ["DRd"],
        "notices_include": ["high-risk-cytogenetics", "salvage-asct-discuss"],
        "notices_exclude": ["salvage-asct-candidate", "salvage-asct-not-recommended", "short-response"],
        "notes": "VenVd never without t(11;14) (BELLINI harm). Last line 2023-11 -> 2026-10 = 35 months.",
    }
    v.order("o1-drd-len-refractory", "order-select", [
        v.draft_med("draft-len", "lenalidomide", "rx-product", "25", dosage="25 mg PO days 1-21 of 28"),
        v.draft_med("draft-dara", "daratumumab-sc", "rx-product", dosage="1800 mg SC weekly", route="Subcutaneous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO weekly"),
    ], {"findings_include": [finding("refractory-agent-ordered", ["lenalidomide"], ["MedicationRequest/draft-len"])],
        "findings_exclude": ["anti-cd38-retreatment", "anti-cd38-cross-resistance", "doublet-when-triplet-tolerated",
                             "missing-thromboprophylaxis", "missing-zoster-prophylaxis"],
        "why": "Lenalidomide ordered after progression on lenalidomide maintenance: the named pitfall (002). "
               "Daratumumab naive; aspirin and acyclovir are active in the chart."},
        "DRd drafted after progression on lenalidomide maintenance.")
    v.order("o2-pvd-not-refractory", "order-sign", [
        v.draft_med("draft-pom", "pomalidomide", "rx-in", dosage="4 mg PO days 1-14 of 21"),
        v.draft_med("draft-btz", "bortezomib", "rx-in", dosage="1.3 mg/m2 SC days 1, 4, 8, 11", route="Subcutaneous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO days 1, 2, 4, 5, 8, 9, 11, 12"),
    ], {"findings_exclude": ["refractory-agent-ordered", "missing-thromboprophylaxis", "missing-zoster-prophylaxis",
                             "doublet-when-triplet-tolerated", "bortezomib-route-neuropathy",
                             "venetoclax-without-t11-14"],
        "why": "Refractoriness is agent-level: pomalidomide in a lenalidomide-refractory patient is a preferred "
               "option (PVd [1A], 003), not a refractory order; bortezomib only exposed; aspirin/acyclovir active."},
        "PVd signed in a lenalidomide-refractory patient.")
    v.order("o3-venvd-t1114-absent", "order-select", [
        v.draft_med("draft-ven", "venetoclax", "rx-in", dosage="800 mg PO daily"),
        v.draft_med("draft-btz", "bortezomib", "rx-in", dosage="1.3 mg/m2 SC days 1, 4, 8, 11", route="Subcutaneous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO"),
    ], {"findings_include": [finding("venetoclax-without-t11-14", ["venetoclax"], ["MedicationRequest/draft-ven"])],
        "findings_exclude": ["venetoclax-t11-14-unknown", "refractory-agent-ordered"],
        "why": "FISH variant t(11;14) Absent (2023-10-25): documented negative, not unknown -> BELLINI OS harm."},
        "VenVd drafted although FISH showed t(11;14) absent.")
    v.order("o4-fish-panel-at-relapse", "order-select", [{
        "resourceType": "ServiceRequest", "id": "draft-fish", "status": "draft", "intent": "order",
        "category": [{"text": "Laboratory"}],
        "code": {"text": "FISH panel, plasma cell myeloma: t(4;14), t(11;14), t(14;16), t(14;20), del(17p), 1q gain"},
        "subject": v.subject, "authoredOn": AS_OF,
        "reasonCode": [{"text": "Myeloma relapse"}]}],
        {"findings_include": [finding("repeat-fish-primary-translocations", [], ["ServiceRequest/draft-fish"])],
         "why": "At relapse only progression-associated abnormalities (del(17p), 1q) need re-testing (002); the "
                "primary translocations were tested at diagnosis."},
        "Full FISH panel ordered at first relapse.")
    sandbox_draft = {
        "resourceType": "MedicationRequest", "id": "request-123", "status": "draft",
        "subject": v.subject, "authoredOn": AS_OF,
        "medicationCodeableConcept": concept("lenalidomide", "rx-product", "10"),
        "reasonCode": {"text": "Multiple myeloma"},
        "category": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                                 "code": "outpatient"}]},
        "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 10, "unit": "mg"}}],
                               "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}],
        "dispenseRequest": {"numberOfRepeatsAllowed": 0, "quantity": {"value": 21, "unit": "capsule"},
                            "expectedSupplyDuration": {"value": 28, "unit": "days"}},
    }
    v.order("o5-sandbox-draft-len", "order-select", [sandbox_draft],
            {"findings_include": [finding("refractory-agent-ordered", ["lenalidomide"],
                                          ["MedicationRequest/request-123"])],
             "nonconformant": True,
             "why": "CDS Hooks sandbox shape (no intent, reasonCode/category as single objects: invalid R4, "
                    "read tolerantly); lenalidomide after progression on maintenance."},
            "Sandbox-like draft (no intent, reasonCode as an object) ordering lenalidomide.",
            selections=["MedicationRequest/request-123"])
    v.order("o6-sandbox-first-call-no-medication", "order-select", [{
        "resourceType": "MedicationRequest", "id": "request-123", "status": "draft", "subject": v.subject,
        "reasonCode": {"text": ""}, "category": {"text": "outpatient"}}],
        {"no_findings": True, "nonconformant": True,
         "why": "The sandbox's first call has no medication yet: nothing to check, must not fail."},
        "Sandbox first call: draft without medication.", selections=["MedicationRequest/request-123"])
    v.order("o8-isakd-anti-cd38-naive", "order-select", [
        v.draft_med("draft-isa", "isatuximab", "atc-old", text="isatuximab 10 mg/kg IV", route="Intravenous"),
        v.draft_med("draft-cfz", "carfilzomib", "rx-in", dosage="56 mg/m2 IV", route="Intravenous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO"),
    ], {"findings_exclude": ["anti-cd38-cross-resistance", "anti-cd38-retreatment", "refractory-agent-ordered",
                             "missing-zoster-prophylaxis", "doublet-when-triplet-tolerated"],
        "why": "IsaKd [1A] for lenalidomide-refractory, anti-CD38-naive disease (003): nothing to warn about "
               "(acyclovir active in the chart)."},
        "IsaKd drafted in an anti-CD38-naive, lenalidomide-refractory patient.")
    v.order("o7-contained-medication-draft", "order-sign", [{
        "resourceType": "MedicationRequest", "id": "draft-len-contained", "status": "draft", "intent": "order",
        "contained": [{"resourceType": "Medication", "id": "m1", "code": concept("lenalidomide", "rx-product", "10")}],
        "medicationReference": {"reference": "#m1"}, "subject": v.subject, "authoredOn": AS_OF,
        "dosageInstruction": [{"text": "10 mg PO days 1-21 of 28"}]}],
        {"findings_include": [finding("refractory-agent-ordered", ["lenalidomide"],
                                      ["MedicationRequest/draft-len-contained"])],
         "why": "The drug of a draft may be a contained Medication (#m1): still lenalidomide after progression on "
                "it."},
        "Lenalidomide draft whose drug is a contained Medication.")
    vs.append(v)

    # P05 ---------------------------------------------------------------------------------------
    v = Vignette("p05-b-rd-continuous-text-atc-local", "vg-p05", "1952-02-14", "male",
                 "Setting B: continuous Rd from 2022 (transplant-ineligible, 74 y), dose reduced 25 -> 10 mg "
                 "(same line), progression on Rd (mCODE). Lenalidomide as text only with brands ('Revlimid 25 mg "
                 "capsule', 'Revlimid 10 mg capsule'), dexamethasone as local code (display only) then ATC. No FISH.")
    v.mm("2022-03-21", "both")
    v.statement("lenalidomide", "2022-04-04", "2023-08-31", enc="text", text="Revlimid 25 mg capsule",
                dosage="25 mg PO days 1-21 q28d")
    v.statement("lenalidomide", "2023-09-01", "2026-09-18", status="stopped", enc="text",
                text="Revlimid 10 mg capsule", dosage="10 mg PO days 1-21 q28d (dose reduced for cytopenia)")
    v.statement("dexamethasone", "2022-04-04", "2024-03-31", enc="local", text="DEXAMETHASONE 4 MG TABLET")
    v.statement("dexamethasone", "2024-04-01", "2026-09-18", status="stopped", enc="atc",
                dosage="20 mg PO weekly")
    v.disease_status("2022-10-03", "improved")
    v.disease_status("2026-09-14", "worsened")
    v.ecog("2026-09-14", 1)
    v.expect = {
        "state": state(priorLines=1, agents={"lenalidomide": "refractory", "dexamethasone": "refractory"},
                       classes={"IMiD": "refractory", "PI": "naive", "anti-CD38": "naive"},
                       doubleRefractory=False, tripleClassExposed=False, tripleClassRefractory=False,
                       pentaRefractory=False, cytogenetics=no_cyto(),
                       transplant={"priorASCT": False, "monthsAsctToProgression": None}, frail=False),
        "why": "Progression 2026-09-14 while on lenalidomide and dexamethasone -> both refractory; the dose "
               "reduction is not a new line (IMWG) -> 1 line; text/brand and local-display encodings resolve to "
               "the same agents; no FISH -> unknown.",
        "setting": "first-relapse-len-refractory",
        "preferred_include": ["PVd"], "preferred_exclude": LEN_REGIMENS, "avoid_include": ["DRd"],
        "notices_exclude": ["high-risk-cytogenetics", "short-response", "insufficient-data"],
    }
    v.order("o1-venetoclax-t1114-unknown", "order-select", [
        v.draft_med("draft-ven", "venetoclax", "text", text="Venclexta 100 mg tablet", dosage="800 mg PO daily"),
        v.draft_med("draft-btz", "bortezomib", "rx-in", dosage="1.3 mg/m2 SC", route="Subcutaneous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO"),
    ], {"findings_include": [finding("venetoclax-t11-14-unknown", ["venetoclax"], ["MedicationRequest/draft-ven"])],
        "findings_exclude": ["venetoclax-without-t11-14"],
        "why": "No FISH at all: t(11;14) status unknown -> warning to obtain FISH first (not 'absent')."},
        "Venetoclax drafted with no FISH on record.")
    v.order("o2-dstu2-medicationorder-len", "order-sign", [{
        "resourceType": "MedicationOrder", "id": "mo-len-1", "status": "draft",
        "patient": {"reference": f"Patient/{v.pid}"}, "dateWritten": AS_OF,
        "prescriber": {"reference": "Practitioner/vignette-hematologist"},
        "medicationCodeableConcept": concept("lenalidomide", "rx-in"),
        "dosageInstruction": [{"text": "25 mg PO days 1-21 of 28"}]}],
        {"findings_include": [finding("refractory-agent-ordered", ["lenalidomide"], ["MedicationOrder/mo-len-1"])],
         "nonconformant": True,
         "why": "DSTU2 MedicationOrder (what the sandbox's default server speaks): lenalidomide in a patient who "
                "progressed on it."},
        "DSTU2 MedicationOrder draft for lenalidomide.")
    vs.append(v)

    # P06 ---------------------------------------------------------------------------------------
    v = Vignette("p06-len-window-toxicity-stop-1q", "vg-p06", "1965-07-19", "female",
                 "Lenalidomide maintenance stopped for toxicity (statusReason 407563006) 4.8 months before "
                 "progression: exposed by IMWG, but inside 003's 6-month window -> regimens as for "
                 "lenalidomide-refractory. Free-text FISH with 1q gain. ASCT 42 months before progression.")
    v.mm("2022-08-15", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2022-09-05", "2022-12-26", enc="rx-in")
    v.transplant("2023-02-20", "58776007")
    v.statement("lenalidomide", "2023-04-17", "2026-04-01", status="stopped", enc="rx-in", reason="toxicity",
                dosage="10 mg PO daily (maintenance)")
    v.fish_report("2022-08-20", "FISH (CD138-enriched): 1q21 (CKS1B) gain DETECTED in 38% of nuclei (3 copies). "
                                "TP53 (17p13.1) deletion not detected. IGH rearrangements t(4;14), t(11;14) and "
                                "t(14;16) not detected.")
    v.disease_status("2026-08-24", "worsened")
    v.ecog("2026-08-24", 0)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed"},
                       classes={"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"},
                       doubleRefractory=False, tripleClassRefractory=False,
                       progressedOnLenalidomideMaintenance=False,
                       cytogenetics={"tested": True, "highRisk": True, "findings": ["1q-gain"], "t11_14": False},
                       transplant={"priorASCT": True, "monthsAsctToProgression": [41, 43], "salvageASCT": "candidate"},
                       frail=False),
        "why": "Stopped for toxicity 2026-04-01, progression 2026-08-24 (145 days): > 60 days -> exposed, and a "
               "toxicity stop is not progression; 1q gain -> high risk (002); ASCT 2023-02-20 -> 42 months with "
               "maintenance: >= 36 and >= 18 -> candidate.",
        "preferred_include": ["PVd"], "preferred_exclude": LEN_REGIMENS,
        "notices_include": ["high-risk-cytogenetics", "salvage-asct-candidate"],
        "notices_exclude": ["salvage-asct-discuss", "salvage-asct-not-recommended"],
        "notes": "Setting code not asserted: 003's window says 'choose regimens as for len-refractory'; only the "
                 "regimen consequence is certain.",
    }
    vs.append(v)

    # P07 ---------------------------------------------------------------------------------------
    v = Vignette("p07-c-after-drd-dara-iv-sc-relapse-status", "vg-p07", "1949-06-30", "female",
                 "Setting C after D-Rd (MAIA-like, 77 y): daratumumab IV ('DARZALEX 16 mg/kg IV', text) switched to "
                 "SC ('Darzalex Faspro', text) in the same line; progression on DRd recorded as a Condition with "
                 "clinicalStatus relapse and onset.")
    v.mm("2021-03-01", "snomed")
    v.statement("daratumumab", "2021-03-15", "2022-06-30", enc="text", text="DARZALEX 16 mg/kg IV")
    v.statement("daratumumab-sc", "2022-07-01", "2026-09-10", status="stopped", enc="text", text="Darzalex Faspro")
    v.statement("lenalidomide", "2021-03-15", "2026-09-10", status="stopped", enc="rx-product", product="25")
    v.statement("dexamethasone", "2021-03-15", "2026-09-10", status="stopped", enc="rx-in")
    v.relapse_status("2026-09-08")
    v.supportive(ASPIRIN, "2021-03-15")
    v.ecog("2026-09-08", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"daratumumab": "refractory", "lenalidomide": "refractory", "dexamethasone": "refractory"},
                       classes={"IMiD": "refractory", "PI": "naive", "anti-CD38": "refractory"},
                       doubleRefractory=False, tripleClassExposed=False, tripleClassRefractory=False,
                       pentaRefractory=False, cytogenetics=no_cyto(), frail=False),
        "why": "Progression 2026-09-08 on DRd -> dara, len, dex refractory; IV->SC switch is the same agent and the "
               "same line; ECOG 1 -> not frail (age 77 is a separate modifier).",
        "setting": "first-relapse-after-anti-cd38",
        "preferred_exclude": sorted(set(ANTI_CD38_REGIMENS + LEN_REGIMENS)),
        "options_include": ["PVd", "KPd"], "avoid_include": ["DRd"],
        "notices_exclude": ["insufficient-data"],
        "notes": "C after D-Rd: PI-based without daratumumab (Kd, VCd, PVd, VMP, KPd) (003; KPd 002); never an "
                 "anti-CD38 regimen preferred in an anti-CD38-refractory patient.",
    }
    v.order("o1-dara-retreatment", "order-select", [
        v.draft_med("draft-dara", "daratumumab-sc", "text", text="Darzalex Faspro 1800 mg SC", dosage="1800 mg SC",
                    route="Subcutaneous"),
        v.draft_med("draft-cfz", "carfilzomib", "rx-in", dosage="56 mg/m2 IV", route="Intravenous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO"),
    ], {"findings_include": [finding("anti-cd38-retreatment", ["daratumumab"], ["MedicationRequest/draft-dara"])],
        "findings_exclude": ["anti-cd38-cross-resistance"],
        "why": "Daratumumab re-ordered in a daratumumab-refractory patient -> 004 retreatment evidence card."},
        "Daratumumab re-ordered after progression on DRd.")
    v.order("o2-isatuximab-after-dara", "order-select", [
        v.draft_med("draft-isa", "isatuximab", "atc", text="Sarclisa (isatuximab-irfc) 10 mg/kg IV",
                    dosage="10 mg/kg IV weekly x4 then every 2 weeks", route="Intravenous"),
        v.draft_med("draft-pom", "pomalidomide", "rx-in", dosage="4 mg PO days 1-21"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="40 mg PO weekly"),
    ], {"findings_include": [finding("anti-cd38-cross-resistance", ["isatuximab"], ["MedicationRequest/draft-isa"])],
        "findings_exclude": ["refractory-agent-ordered", "anti-cd38-retreatment", "missing-thromboprophylaxis"],
        "why": "Isatuximab after progression on daratumumab -> cross-resistance warning (003, 000); isatuximab and "
               "pomalidomide themselves were never given -> not a refractory order; aspirin active."},
        "IsaPd drafted after progression on daratumumab.")
    vs.append(v)

    # P08 ---------------------------------------------------------------------------------------
    v = Vignette("p08-c-after-dvmp-contained-atc-old", "vg-p08", "1947-01-20", "male",
                 "Setting C after D-VMP (ALCYONE-like, 79 y): VMP x9 then daratumumab every 4 weeks until "
                 "progression (mCODE). Every medication as a contained Medication (#med); daratumumab per-dose "
                 "MedicationAdministration coded with the old ATC L01XC24.")
    v.mm("2021-01-18", "icd")
    v.statement("bortezomib", "2021-02-01", "2022-02-14", enc="rx-in", how="contained")
    v.statement("melphalan", "2021-02-01", "2022-02-14", enc="rx-in", how="contained")
    v.statement("prednisone", "2021-02-01", "2022-02-14", enc="rx-in", how="contained")
    v.administrations("daratumumab", weekly_then("2021-02-01", [(7, 6), (21, 16), (28, 60)]), enc="atc-old",
                      how="contained")
    v.disease_status("2021-09-01", "improved")
    v.disease_status("2026-08-31", "worsened")
    v.ecog("2026-08-31", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"daratumumab": "refractory", "bortezomib": "exposed", "melphalan": "exposed",
                               "prednisone": "exposed"},
                       classes={"IMiD": "naive", "PI": "exposed", "anti-CD38": "refractory"},
                       doubleRefractory=False, tripleClassExposed=False, tripleClassRefractory=False,
                       pentaRefractory=False, progressedOnLenalidomideMaintenance=False, cytogenetics=no_cyto(),
                       frail=False),
        "why": "Daratumumab given every 4 weeks until progression 2026-08-31 -> refractory; VMP ended 2022-02 -> "
               "exposed; lenalidomide never given.",
        "setting": "first-relapse-after-anti-cd38",
        "preferred_exclude": ANTI_CD38_REGIMENS,
        "options_include": ["Rd", "IRd"],
        "notes": "C after D-VMP: lenalidomide-based without daratumumab; Rd/IRd/EloRd for > 75 (003).",
    }
    vs.append(v)

    # P09 ---------------------------------------------------------------------------------------
    v = Vignette("p09-d-two-lines-medication-reference", "vg-p09", "1961-12-01", "male",
                 "Setting D (2 prior lines, double-refractory, anti-CD38 naive): VRd-ASCT-len maintenance, then PVd "
                 "until progression. Line 2 as MedicationRequest per 21-day cycle referencing Medication resources "
                 "(included in the bundle; in fetch mode reachable only via _include/read). Baseline FISH variants "
                 "negative; at relapse free-text TP53 deletion detected (acquired).")
    v.mm("2021-04-19", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2021-05-03", "2021-08-23", enc="rx-in")
    v.transplant("2021-10-04", "234336002")
    v.statement("lenalidomide", "2021-12-06", "2024-03-15", status="stopped", enc="rx-in")
    v.disease_status("2024-03-11", "worsened")
    v.cycles([("pomalidomide", "rx-in", None, None), ("bortezomib", "rx-product", "inj", None),
              ("dexamethasone", "rx-in", None, None)], "2024-03-25", 43, 21, how="ref", last_status="stopped",
             last_end="2026-09-28")
    v.disease_status("2026-09-21", "worsened")
    for iscn, txt in (("del(17)(p13.1)", "del(17p)"), ("t(4;14)(p16;q32)", "t(4;14)"),
                      ("t(11;14)(q13;q32)", "t(11;14)")):
        v.fish_variant("2021-04-22", iscn, False, txt, gene="TP53" if "17" in iscn else None)
    v.fish_report("2026-10-02", "Interphase FISH at relapse: TP53 (17p13.1) deletion DETECTED in 31% of nuclei.")
    v.ecog("2026-09-21", 1)
    v.expect = {
        "state": state(priorLines=2,
                       agents={"bortezomib": "refractory", "lenalidomide": "refractory", "pomalidomide": "refractory",
                               "dexamethasone": "refractory"},
                       classes={"IMiD": "refractory", "PI": "refractory", "anti-CD38": "naive"},
                       doubleRefractory=True, tripleClassExposed=False, tripleClassRefractory=False,
                       pentaRefractory=False,
                       cytogenetics={"tested": True, "highRisk": True, "findings": ["del(17p)"], "t11_14": False},
                       transplant={"priorASCT": True}, frail=False),
        "why": "Line 1 ended by progression on len maintenance (2024-03-11); line 2 PVd ended by progression "
               "2026-09-21 on it -> pom + bortezomib refractory; IMiD+PI refractory = double; del(17p) acquired "
               "at relapse counts (CLINICAL_LOGIC §1).",
        "setting": "later-relapse",
        "preferred_include": ["DKd"],
        "preferred_exclude": ["IsaPd", "DPd", "EloPd", "KPd", "PVd", "DVd", "DRd", "KRd", "Rd", "Pd"],
        "options_exclude": ["VenVd"],
        "notices_include": ["clinical-trial", "high-risk-cytogenetics"],
        "notices_exclude": ["short-response"],
        "notes": "D: IMiD-refractory -> PI-based with mAb (DKd [1A]); pomalidomide regimens contain a refractory "
                 "agent so never preferred. Last line 2024-03 -> 2026-09 = 30 months.",
    }
    v.order("o1-kpd-pomalidomide-refractory", "order-sign", [
        v.draft_med("draft-cfz", "carfilzomib", "rx-in", dosage="56 mg/m2 IV", route="Intravenous"),
        v.draft_med("draft-pom", "pomalidomide", "text", text="Pomalyst 4 mg capsule", dosage="4 mg PO days 1-21"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO"),
    ], {"findings_include": [finding("refractory-agent-ordered", ["pomalidomide"], ["MedicationRequest/draft-pom"])
                             | {"agents_exclude": ["carfilzomib"]}],
        "why": "Pomalidomide ordered after progression on PVd -> refractory agent; carfilzomib is a different "
               "agent from the refractory bortezomib (agent-level, not class-level)."},
        "KPd signed after progression on PVd.")
    vs.append(v)

    # P10 ---------------------------------------------------------------------------------------
    v = Vignette("p10-d-pi-refractory-atc-local-statusreason", "vg-p10", "1954-08-08", "female",
                 "Setting D, PI-refractory and IMiD-naive: VCd progression during cycle 6 (mCODE), then Kd stopped "
                 "with statusReason 'no response' (the only evidence of the second progression). New ATC codes and "
                 "local formulary codes with display only.")
    v.mm("2022-12-19", "snomed")
    v.statement("bortezomib", "2023-01-09", "2023-06-19", status="stopped", enc="atc")
    v.statement("cyclophosphamide", "2023-01-09", "2023-06-19", status="stopped", enc="atc")
    v.statement("dexamethasone", "2023-01-09", "2023-06-19", status="stopped", enc="local",
                text="DEXAMETHASONE 4 MG TABLET")
    v.disease_status("2023-06-12", "worsened")
    v.statement("carfilzomib", "2023-07-03", "2026-08-20", status="stopped", enc="local",
                text="KYPROLIS 60 MG IV SOLR", reason="progression")
    v.statement("dexamethasone", "2023-07-03", "2026-08-20", status="stopped", enc="atc", reason="progression")
    v.ecog("2026-08-20", 0)
    v.expect = {
        "state": state(priorLines=2,
                       agents={"bortezomib": "refractory", "cyclophosphamide": "refractory",
                               "carfilzomib": "refractory", "dexamethasone": "refractory"},
                       classes={"IMiD": "naive", "PI": "refractory", "anti-CD38": "naive"},
                       doubleRefractory=False, tripleClassExposed=False, tripleClassRefractory=False,
                       pentaRefractory=False, cytogenetics=no_cyto(), frail=False),
        "why": "Progression 2023-06-12 on VCd and 2026-08-20 on Kd (statusReason no response) -> both PIs "
               "refractory; IMiD naive.",
        "setting": "later-relapse",
        "preferred_include": ["IsaPd"],
        "preferred_exclude": ["DKd", "Kd", "KPd", "IsaKd", "DVd", "PVd", "SVd", "VenVd", "Vd", "VCd"],
        "options_include": ["DRd", "DPd"],
        "notices_include": ["clinical-trial"],
        "notices_exclude": ["short-response"],
        "notes": "D: PI-refractory -> IMiD-based with mAb: DRd, DPd (002); IsaPd [1A] (003). Last line 2023-07 -> "
                 "2026-08 = 37 months.",
    }
    v.order("o1-dvd-bortezomib-refractory", "order-sign", [
        v.draft_med("draft-dara", "daratumumab", "rx-in", dosage="16 mg/kg IV", route="Intravenous"),
        v.draft_med("draft-btz", "bortezomib", "rx-product", "3.5", dosage="1.3 mg/m2 SC", route="Subcutaneous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO"),
    ], {"findings_include": [finding("refractory-agent-ordered", ["bortezomib"], ["MedicationRequest/draft-btz"])],
        "findings_exclude": ["anti-cd38-retreatment", "anti-cd38-cross-resistance"],
        "why": "Bortezomib ordered after progression on VCd -> refractory agent; daratumumab never given."},
        "DVd signed for a bortezomib-refractory patient.")
    vs.append(v)

    # P11 ---------------------------------------------------------------------------------------
    v = Vignette("p11-e-tcr-t414-variant", "vg-p11", "1963-04-27", "male",
                 "Setting E (triple-class refractory): VRd-ASCT (CPT 38241)-len maintenance, progression (mCODE); "
                 "DKd until progression recorded as Condition C90.02. FISH variant t(4;14) present.")
    v.mm("2020-01-13", "icd")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2020-02-03", "2020-05-25", enc="rx-in")
    v.transplant("2020-07-06", "38241")
    v.statement("lenalidomide", "2020-09-07", "2023-01-20", status="stopped", enc="rx-in")
    v.disease_status("2023-01-16", "worsened")
    v.statement("daratumumab", "2023-02-06", "2026-10-01", status="stopped", enc="rx-product")
    v.statement("carfilzomib", "2023-02-06", "2026-10-01", status="stopped", enc="rx-in")
    v.statement("dexamethasone", "2023-02-06", "2026-10-01", status="stopped", enc="rx-in")
    v.relapse_c9002("2026-09-28")
    v.fish_variant("2020-01-16", "t(4;14)(p16;q32)", True, "t(4;14) FGFR3/IGH fusion", location="4p16")
    v.fish_variant("2020-01-16", "del(17)(p13.1)", False, "del(17p)", gene="TP53")
    v.fish_variant("2020-01-16", "t(11;14)(q13;q32)", False, "t(11;14)")
    v.ecog("2026-09-28", 1)
    v.expect = {
        "state": state(priorLines=2,
                       agents={"bortezomib": "exposed", "lenalidomide": "refractory", "daratumumab": "refractory",
                               "carfilzomib": "refractory", "dexamethasone": "refractory"},
                       classes={"IMiD": "refractory", "PI": "refractory", "anti-CD38": "refractory"},
                       doubleRefractory=True, tripleClassExposed=True, tripleClassRefractory=True,
                       pentaRefractory=False,
                       cytogenetics={"tested": True, "highRisk": True, "findings": ["t(4;14)"], "t11_14": False},
                       transplant={"priorASCT": True}, frail=False),
        "why": "Len refractory (maintenance), carfilzomib + daratumumab refractory (progression on DKd) -> TCR; "
               "pomalidomide never given -> not penta; t(4;14) is high risk per CLINICAL_LOGIC §1.",
        "setting": "triple-class-refractory",
        "preferred_include": ["ide-cel", "cilta-cel"],
        "preferred_exclude": ["DKd", "DPd", "IsaPd", "IsaKd", "DRd", "KRd", "Kd"],
        "notices_include": ["clinical-trial", "high-risk-cytogenetics"],
    }
    v.variants.append({
        "name": "car-t-unavailable", "config": {"CAR_T_AVAILABLE": False},
        "setting": "triple-class-refractory",
        "preferred_exclude": ["ide-cel", "cilta-cel", "Sd"],
        "options_include": ["teclistamab", "elranatamab", "talquetamab"],
        "options_exclude": ["Sd"],
        "tiers": {"ide-cel": "if-unavailable", "cilta-cel": "if-unavailable"},
        "notices_include": ["clinical-trial"],
        "why": "CONTRACT: CAR_T_AVAILABLE false moves CAR-T to if-unavailable (evidence kept); bispecifics "
               "listed (off-label in the US before 4 prior lines); Sd (STORM ORR 26 %) only within its label (penta-refractory after >= 4 "
               "therapies): not penta -> not offered."})
    v.order("o1-sd-no-antiemetic", "order-select", [
        v.draft_med("draft-sel", "selinexor", "atc", text="XPOVIO (selinexor) 20 mg tablet",
                    dosage="80 mg PO days 1 and 3 weekly"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO days 1 and 3 weekly"),
    ], {"findings_include": [finding("missing-antiemetic", ["selinexor"], ["MedicationRequest/draft-sel"])],
        "findings_exclude": ["refractory-agent-ordered"],
        "why": "Selinexor without antiemetic prophylaxis -> mandatory antiemetic (002); selinexor never given."},
        "Selinexor-dexamethasone drafted without an antiemetic.")
    vs.append(v)

    # P12 ---------------------------------------------------------------------------------------
    v = Vignette("p12-e-penta-admin-per-dose", "vg-p12", "1956-10-05", "female",
                 "Setting E, penta-refractory: VRd-ASCT-len maintenance; DKd (carfilzomib RxNorm SBD and "
                 "daratumumab new ATC L01FC01, one MedicationAdministration per dose); PVd with brand texts "
                 "('Pomalyst 4 mg capsule', 'Velcade 1.3 mg/m2 SC') until progression.")
    v.mm("2019-03-04", "both")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2019-03-18", "2019-07-08", enc="rx-in")
    v.transplant("2019-08-19", "58776007")
    v.statement("lenalidomide", "2019-10-21", "2022-04-29", status="stopped", enc="rx-in")
    v.disease_status("2022-04-25", "worsened")
    v.administrations("carfilzomib", dates_every("2022-05-09", 7, 110), enc="rx-product", route="Intravenous")
    v.administrations("daratumumab", weekly_then("2022-05-09", [(7, 8), (14, 8), (28, 21)]), enc="atc")
    v.statement("dexamethasone", "2022-05-09", "2024-06-03", status="stopped", enc="rx-in")
    v.disease_status("2024-06-03", "worsened")
    v.statement("pomalidomide", "2024-06-17", "2026-09-25", status="stopped", enc="text", text="Pomalyst 4 mg capsule")
    v.statement("bortezomib", "2024-06-17", "2026-09-25", status="stopped", enc="text", text="Velcade 1.3 mg/m2 SC")
    v.statement("dexamethasone", "2024-06-17", "2026-09-25", status="stopped", enc="rx-in")
    v.disease_status("2026-09-21", "worsened")
    v.ecog("2026-09-21", 1)
    v.expect = {
        "state": state(priorLines=3,
                       agents={"bortezomib": "refractory", "lenalidomide": "refractory", "pomalidomide": "refractory",
                               "carfilzomib": "refractory", "daratumumab": "refractory",
                               "dexamethasone": "refractory"},
                       classes={"IMiD": "refractory", "PI": "refractory", "anti-CD38": "refractory"},
                       doubleRefractory=True, tripleClassExposed=True, tripleClassRefractory=True,
                       pentaRefractory=True, cytogenetics=no_cyto(), transplant={"priorASCT": True}, frail=False),
        "why": "Progression on len maintenance (2022-04), on DKd 2024-06-03 (carfilzomib weekly until then, last "
               "daratumumab 2024-05-06, 28 days before), on PVd (2026-09-21) -> len, pom, bortezomib, carfilzomib, "
               "dara refractory = penta-refractory.",
        "setting": "triple-class-refractory",
        "preferred_include": ["ide-cel", "cilta-cel"],
        "preferred_exclude": ["DKd", "DPd", "IsaPd", "IsaKd", "PVd", "KPd", "Kd", "Pd", "Sd"],
        "options_exclude": ["Sd"],
        "notices_include": ["clinical-trial"],
    }
    vs.append(v)

    # P13 ---------------------------------------------------------------------------------------
    v = Vignette("p13-insufficient-data-no-history", "vg-p13", "1960-02-29", "female",
                 "Myeloma (C90.00) but no medication, response or transplant data at all -> insufficient-data.")
    v.mm("2025-11-03", "icd")
    v.expect = {
        "state": state(priorLines=0, agents={}, classes=NAIVE3, cytogenetics=no_cyto(),
                       transplant={"priorASCT": False}),
        "why": "No usable treatment history: never guess (issue 4).",
        "setting": "insufficient-data",
        "notices_include": ["insufficient-data"],
        "preferred_exclude": ["DRd", "KRd", "PVd", "DKd", "ide-cel", "cilta-cel"],
    }
    vs.append(v)

    # P14 ---------------------------------------------------------------------------------------
    v = Vignette("p14-not-relapsed-dvrd-ongoing", "vg-p14", "1967-05-05", "male",
                 "Newly diagnosed 2026-06, on Dara(SC)-VRd induction (MedicationRequest per 28-day cycle, current "
                 "cycle active), responding -> not-relapsed.")
    v.mm("2026-06-15", "snomed")
    v.cycles([("daratumumab-sc", "rx-product", "sc", None), ("bortezomib", "rx-in", None, None),
              ("lenalidomide", "rx-product", "25", None), ("dexamethasone", "rx-in", None, None)],
             "2026-07-06", 4, 28, active_last=True)
    v.disease_status("2026-09-28", "improved")
    v.m_protein([("2026-06-15", 2.8), ("2026-08-03", 1.4), ("2026-09-28", 0.6)])
    v.ecog("2026-09-28", 1)
    v.expect = {
        "state": state(agents={"daratumumab": "exposed", "bortezomib": "exposed", "lenalidomide": "exposed",
                               "dexamethasone": "exposed"},
                       classes={"IMiD": "exposed", "PI": "exposed", "anti-CD38": "exposed"},
                       doubleRefractory=False, tripleClassExposed=True, tripleClassRefractory=False,
                       pentaRefractory=False, cytogenetics=no_cyto(), frail=False),
        "why": "On first-line therapy without progression; exposed to all three classes (definition of "
               "triple-class exposed); priorLines not asserted (0 vs 1 for an ongoing first line is ambiguous).",
        "setting": "not-relapsed",
        "notices_exclude": ["insufficient-data", "short-response", "salvage-asct-candidate",
                            "salvage-asct-discuss", "salvage-asct-not-recommended"],
        "preferred_exclude": ["ide-cel", "cilta-cel"],
    }
    vs.append(v)

    # P15 ---------------------------------------------------------------------------------------
    v = Vignette("p15-not-relapsed-subthreshold-mprotein", "vg-p15", "1962-01-17", "female",
                 "On lenalidomide maintenance after VRd + ASCT; M-protein rises from nadir 1.0 to 1.3 g/dL (+30 % "
                 "but only +0.3 g/dL): NOT IMWG progression -> not-relapsed.")
    v.mm("2023-07-03", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2023-07-17", "2023-11-06", enc="rx-in")
    v.transplant("2024-01-08", "58776007")
    v.statement("lenalidomide", "2024-03-04", None, status="active", enc="rx-product", product="10",
                dosage="10 mg PO daily (maintenance)")
    v.m_protein([("2023-07-03", 4.2), ("2023-11-13", 1.6), ("2024-06-03", 1.0), ("2025-06-02", 1.0),
                 ("2026-06-01", 1.2), ("2026-09-14", 1.3)])
    v.disease_status("2026-09-14", "stable")
    v.ecog("2026-09-14", 0)
    v.expect = {
        "state": state(agents={"bortezomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed"},
                       classes={"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"},
                       doubleRefractory=False, tripleClassRefractory=False,
                       progressedOnLenalidomideMaintenance=False, cytogenetics=no_cyto(),
                       transplant={"priorASCT": True, "monthsAsctToProgression": None}, frail=False),
        "why": "IMWG needs >= 25 % AND >= 0.5 g/dL absolute from nadir; +0.3 g/dL is below -> no progression.",
        "setting": "not-relapsed",
        "notices_exclude": ["insufficient-data", "salvage-asct-candidate", "salvage-asct-discuss",
                            "salvage-asct-not-recommended", "short-response"],
        "avoid_exclude": ["DRd"],
    }
    vs.append(v)

    # P16-P19: not myeloma -----------------------------------------------------------------------
    v = Vignette("p16-mgus-quiet", "vg-p16", "1950-08-21", "male",
                 "MGUS (SNOMED 277577000 / ICD-10-CM D47.2) with stable small M-protein: not myeloma -> no cards.")
    v.condition([(SNOMED, "277577000", "Monoclonal gammopathy of undetermined significance"),
                 (ICD10CM, "D47.2", "Monoclonal gammopathy")], "2021-05-10", "MGUS")
    v.m_protein([("2021-05-10", 0.6), ("2023-05-15", 0.6), ("2025-05-12", 0.7), ("2026-05-11", 0.7)])
    v.expect = {"quiet": True, "why": "Patients without myeloma stay quiet (issue 3/4)."}
    vs.append(v)

    v = Vignette("p17-smoldering-on-dara-quiet", "vg-p17", "1958-03-30", "female",
                 "High-risk smoldering myeloma (SNOMED 413587002) on daratumumab SC monotherapy (AQUILA, "
                 "MedicationAdministration per dose) with stable M-protein: not active myeloma -> no cards.")
    v.condition([(SNOMED, "413587002", "Smoldering myeloma")], "2025-10-06", "Smoldering multiple myeloma")
    v.administrations("daratumumab-sc", weekly_then("2026-01-05", [(7, 8), (14, 8), (28, 2)]), enc="rx-product")
    v.m_protein([("2025-10-06", 2.1), ("2026-04-06", 1.9), ("2026-10-05", 2.0)])
    v.expect = {"quiet": True, "why": "Smoldering myeloma is not multiple myeloma requiring RRMM support."}
    vs.append(v)

    v = Vignette("p18-diabetic-quiet", "vg-p18", "1959-11-11", "male",
                 "Type 2 diabetes on metformin and low-dose aspirin (Synthea-shaped codes): no cards.")
    v.condition([(SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)"),
                 (ICD10CM, "E11.9", "Type 2 diabetes mellitus without complications")], "2015-02-02", "Type 2 diabetes")
    v.res["medicationRequests"].append({
        "resourceType": "MedicationRequest", "id": "vg-p18-mr-metformin", "status": "active", "intent": "order",
        "medicationCodeableConcept": METFORMIN, "subject": v.subject, "authoredOn": "2025-02-02",
        "dosageInstruction": [{"text": "500 mg PO daily"}]})
    v.supportive(ASPIRIN, "2018-06-01")
    v.expect = {"quiet": True, "why": "Not myeloma."}
    vs.append(v)

    v = Vignette("p19-breast-cancer-chemo-quiet", "vg-p19", "1971-06-09", "female",
                 "Breast cancer on AC-T chemotherapy with dexamethasone premedication and a 'worsened' disease "
                 "status: cancer, steroids and progression, but not myeloma -> no cards, also for orders.")
    v.condition([(SNOMED, "254837009", "Malignant neoplasm of breast (disorder)"),
                 (ICD10CM, "C50.911", "Malignant neoplasm of unspecified site of right female breast")],
                "2026-02-16", "Breast cancer, right")
    ac = dates_every("2026-03-02", 14, 4)
    v.administrations("doxorubicin", ac, enc="rx-in")
    v.administrations("cyclophosphamide", ac, enc="rx-in")
    v.administrations("dexamethasone", ac, enc="rx-in")
    for dt in dates_every("2026-04-27", 7, 12):
        v.res["medicationAdministrations"].append({
            "resourceType": "MedicationAdministration", "id": v.nid("ma"), "status": "completed",
            "medicationCodeableConcept": PACLITAXEL, "subject": v.subject, "effectiveDateTime": f"{iso(dt)}T10:00:00Z"})
    v.disease_status("2026-09-30", "worsened")
    v.expect = {"quiet": True, "why": "Not myeloma: no RRMM cards even with chemotherapy and progression."}
    v.order("o1-ac-dex-quiet", "order-sign", [
        v.draft_med("draft-dox", "doxorubicin", "rx-in", dosage="60 mg/m2 IV", route="Intravenous"),
        v.draft_med("draft-cyc", "cyclophosphamide", "rx-in", dosage="600 mg/m2 IV", route="Intravenous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="12 mg IV premedication"),
    ], {"no_findings": True, "why": "Not myeloma: order checks stay quiet."},
        "AC chemotherapy signed for a breast-cancer patient.")
    vs.append(v)

    # P20 ---------------------------------------------------------------------------------------
    v = Vignette("p20-pcl-asct-12mo-short", "vg-p20", "1971-01-25", "male",
                 "Primary plasma cell leukemia (C90.10 only), VRd-ASCT-len maintenance; relapse 12 months after "
                 "ASCT (Condition C90.12 + mCODE): short response, salvage ASCT not recommended.")
    v.condition([(ICD10CM, "C90.10", "Plasma cell leukemia not having achieved remission"),
                 (SNOMED, "95210003", "Plasma cell leukemia")], "2025-02-17", "Plasma cell leukemia")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2025-03-03", "2025-06-16", enc="rx-in")
    v.transplant("2025-07-14", "58776007")
    v.statement("lenalidomide", "2025-09-01", "2026-07-24", status="stopped", enc="rx-in")
    v.condition([(ICD10CM, "C90.12", "Plasma cell leukemia in relapse")], "2026-07-20", "Plasma cell leukemia in relapse")
    v.disease_status("2026-07-20", "worsened")
    v.ecog("2026-07-20", 1)
    v.expect = {
        "state": state(plasmaCellLeukemia=True, priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "refractory", "dexamethasone": "exposed"},
                       classes={"IMiD": "refractory", "PI": "exposed", "anti-CD38": "naive"},
                       progressedOnLenalidomideMaintenance=True,
                       transplant={"priorASCT": True, "monthsAsctToProgression": [11, 13],
                                   "salvageASCT": "not-recommended"}),
        "why": "PCL counts as myeloma disease; ASCT 2025-07-14 -> relapse 2026-07-20 = 12 months < 18 -> "
               "not recommended (002); line start 2025-03 -> 16.6 months < 18 -> short response.",
        "setting": "first-relapse-len-refractory",
        "options_include": ["VDT-PACE"],
        "notices_include": ["plasma-cell-leukemia", "short-response", "salvage-asct-not-recommended",
                            "restage-at-relapse"],
        "notices_exclude": ["salvage-asct-candidate", "salvage-asct-discuss"],
        "preferred_exclude": LEN_REGIMENS,
    }
    vs.append(v)

    # P21 ---------------------------------------------------------------------------------------
    v = Vignette("p21-b-extramedullary-krd-maint", "vg-p21", "1955-12-12", "female",
                 "KRd x8 (no ASCT) then lenalidomide maintenance; relapse with a new extramedullary plasmacytoma "
                 "(C90.20) and mCODE worsened.")
    v.mm("2024-01-22", "snomed")
    for ag in ("carfilzomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2024-02-05", "2024-09-16", enc="rx-in")
    v.statement("lenalidomide", "2024-10-07", "2026-09-16", status="stopped", enc="rx-product", product="10",
                dosage="10 mg PO days 1-21 (maintenance)")
    v.condition([(ICD10CM, "C90.20", "Extramedullary plasmacytoma not having achieved remission")], "2026-09-14",
                "Extramedullary plasmacytoma, paraspinal soft tissue")
    v.disease_status("2026-09-14", "worsened")
    v.ecog("2026-09-14", 1)
    v.expect = {
        "state": state(extramedullary=True, priorLines=1,
                       agents={"carfilzomib": "exposed", "lenalidomide": "refractory", "dexamethasone": "exposed"},
                       classes={"IMiD": "refractory", "PI": "exposed", "anti-CD38": "naive"},
                       progressedOnLenalidomideMaintenance=True, transplant={"priorASCT": False}, frail=False),
        "why": "Progression on lenalidomide maintenance after KRd (one line); extramedullary plasmacytoma coded.",
        "setting": "first-relapse-len-refractory",
        "options_include": ["VDT-PACE"],
        "preferred_exclude": LEN_REGIMENS,
        "notices_include": ["extramedullary-disease", "restage-at-relapse"],
    }
    vs.append(v)

    # P22 ---------------------------------------------------------------------------------------
    v = Vignette("p22-a-frail-ecog2-vd", "vg-p22", "1946-04-02", "male",
                 "Frail (ECOG 2, 80 y) first relapse after Vd x8 (bortezomib per-dose administrations), "
                 "lenalidomide-naive.")
    v.mm("2023-12-04", "icd")
    v.administrations("bortezomib", bortezomib_days("2024-01-08", 8, 21), enc="rx-product", product="inj",
                      route="Subcutaneous")
    v.statement("dexamethasone", "2024-01-08", "2024-07-01", enc="rx-in")
    v.ecog("2024-01-08", 1)
    v.disease_status("2026-08-17", "worsened")
    v.ecog("2026-08-17", 2)
    v.expect = {
        "state": state(priorLines=1, agents={"bortezomib": "exposed", "dexamethasone": "exposed"},
                       classes={"IMiD": "naive", "PI": "exposed", "anti-CD38": "naive"},
                       progressedOnLenalidomideMaintenance=False, cytogenetics=no_cyto(), frail=True),
        "why": "Latest ECOG 2 -> frail; Vd ended 2024-07 -> exposed; lenalidomide-naive = len-sensitive.",
        "setting": "first-relapse-len-sensitive",
        "options_include": ["IRd", "Rd"],
        "notes": "003: frail or > 75 -> Rd alone or with ixazomib/elotuzumab; 002: IRd for frail.",
    }
    v.order("o1-rd-frail-no-aspirin", "order-select", [
        v.draft_med("draft-len", "lenalidomide", "rx-product", "15", dosage="15 mg PO days 1-21 of 28"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO weekly"),
    ], {"findings_include": [finding("missing-thromboprophylaxis", ["lenalidomide"], ["MedicationRequest/draft-len"])],
        "findings_exclude": ["doublet-when-triplet-tolerated", "refractory-agent-ordered"],
        "why": "IMiD without an antithrombotic -> aspirin (002); frail -> a doublet is appropriate; len-naive."},
        "Rd drafted for a frail patient without aspirin.")
    vs.append(v)

    # P23 ---------------------------------------------------------------------------------------
    v = Vignette("p23-a-asct-30mo-no-maint-melphalan", "vg-p23", "1970-10-30", "male",
                 "VRd x4 (MedicationRequest per cycle), high-dose melphalan (MedicationAdministration) and ASCT "
                 "(CPT 38241), no maintenance; relapse 30 months later (C90.02 + M-protein).")
    v.mm("2023-11-20", "icd")
    v.cycles([("bortezomib", "rx-in", None, None), ("lenalidomide", "rx-in", None, None),
              ("dexamethasone", "rx-in", None, None)], "2023-12-04", 4, 21)
    v.administrations("melphalan", [d("2024-04-06")], enc="rx-in", text="melphalan 200 mg/m2 IV")
    v.transplant("2024-04-08", "38241")
    v.m_protein([("2023-11-20", 3.4), ("2024-07-08", 0.0), ("2025-07-07", 0.0), ("2026-09-28", 0.6),
                 ("2026-10-13", 0.8)])
    v.relapse_c9002("2026-10-13")
    v.ecog("2026-10-13", 0)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed",
                               "melphalan": "exposed"},
                       classes={"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"},
                       progressedOnLenalidomideMaintenance=False,
                       transplant={"priorASCT": True, "monthsAsctToProgression": [29, 31], "salvageASCT": "candidate"},
                       frail=False),
        "why": "Melphalan conditioning is part of the same line; ASCT 2024-04-08 -> relapse ~2026-10 = 30 months "
               "with no maintenance: >= 18 (002) and >= 24 (003 without maintenance) -> candidate.",
        "setting": "first-relapse-len-sensitive",
        "preferred_include": ["DRd"],
        "notices_include": ["salvage-asct-candidate"],
        "notices_exclude": ["salvage-asct-discuss", "salvage-asct-not-recommended", "short-response"],
    }
    v.order("o1-high-dose-dex-no-pjp", "order-select", [
        v.draft_med("draft-ixa", "ixazomib", "rx-product", "4", dosage="4 mg PO days 1, 8, 15"),
        v.draft_med("draft-len", "lenalidomide", "rx-in", dosage="25 mg PO days 1-21"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in",
                    dosage="40 mg PO daily days 1-4, 9-12, 17-20 (high-dose pulse)"),
        v.draft_med("draft-asa", None, cc=ASPIRIN, dosage="81 mg PO daily"),
        v.draft_med("draft-acv", None, cc=ACYCLOVIR, dosage="400 mg PO twice daily"),
    ], {"findings_include": [finding("missing-pjp-prophylaxis", ["dexamethasone"], ["MedicationRequest/draft-dex"])],
        "findings_exclude": ["refractory-agent-ordered", "doublet-when-triplet-tolerated"],
        "why": "Pulsed dexamethasone 40 mg x 12 days per cycle (high-dose glucocorticoid) without Pneumocystis "
               "prophylaxis -> suggest it (002)."},
        "IRd with high-dose pulsed dexamethasone and no PJP prophylaxis.")
    v.order("o2-high-dose-dex-with-tmp-smx", "order-select", [
        v.draft_med("draft-ixa", "ixazomib", "rx-product", "4", dosage="4 mg PO days 1, 8, 15"),
        v.draft_med("draft-len", "lenalidomide", "rx-in", dosage="25 mg PO days 1-21"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in",
                    dosage="40 mg PO daily days 1-4, 9-12, 17-20 (high-dose pulse)"),
        v.draft_med("draft-asa", None, cc=ASPIRIN, dosage="81 mg PO daily"),
        v.draft_med("draft-acv", None, cc=ACYCLOVIR, dosage="400 mg PO twice daily"),
        v.draft_med("draft-tmp", None, cc=TMP_SMX, dosage="1 tablet PO three times weekly"),
    ], {"findings_exclude": ["missing-pjp-prophylaxis", "missing-thromboprophylaxis", "missing-zoster-prophylaxis"],
        "why": "The same high-dose regimen with sulfamethoxazole/trimethoprim, aspirin and acyclovir drafted "
               "alongside: every prophylaxis is there."},
        "IRd with high-dose dexamethasone and all prophylaxis drafted.")
    vs.append(v)

    # P24 ---------------------------------------------------------------------------------------
    v = Vignette("p24-a-fish-freetext-del17p", "vg-p24", "1953-09-09", "female",
                 "Free-text FISH report: 'TP53 (17p13.1) deletion DETECTED in 47% of nuclei; CCND1/IGH t(11;14) not "
                 "detected'. VRd x6 (no ASCT, 73 y), relapse 2026 by M-protein and mCODE.")
    v.mm("2023-04-24", "snomed")
    v.fish_report("2023-05-02", "TP53 (17p13.1) deletion DETECTED in 47% of nuclei; CCND1/IGH t(11;14) not detected")
    v.statement("bortezomib", "2023-05-15", "2023-10-30", enc="rx-product", product="3.5")
    v.statement("lenalidomide", "2023-05-15", "2023-10-30", enc="rx-product", product="25g")
    v.statement("dexamethasone", "2023-05-15", "2023-10-30", enc="rx-in")
    v.m_protein([("2023-04-24", 2.6), ("2023-11-06", 0.2), ("2025-11-03", 0.3), ("2026-08-03", 0.9),
                 ("2026-08-17", 1.0)])
    v.disease_status("2026-08-17", "worsened")
    v.ecog("2026-08-17", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed"},
                       classes={"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"},
                       cytogenetics={"tested": True, "highRisk": True, "findings": ["del(17p)"], "t11_14": False},
                       frail=False),
        "why": "Narrative FISH: del(17p) detected (high risk), t(11;14) explicitly not detected -> false.",
        "setting": "first-relapse-len-sensitive",
        "preferred_include": ["DRd"], "options_exclude": ["VenVd"],
        "notices_include": ["high-risk-cytogenetics"],
    }
    v.order("o1-venetoclax-freetext-negative", "order-sign", [
        v.draft_med("draft-ven", "venetoclax", "rx-in", dosage="800 mg PO daily"),
        v.draft_med("draft-btz", "bortezomib", "rx-in", dosage="1.3 mg/m2 SC", route="Subcutaneous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO"),
    ], {"findings_include": [finding("venetoclax-without-t11-14", ["venetoclax"], ["MedicationRequest/draft-ven"])],
        "findings_exclude": ["venetoclax-t11-14-unknown"],
        "why": "Free-text report says t(11;14) not detected: documented absent -> critical (BELLINI)."},
        "Venetoclax signed although narrative FISH showed no t(11;14).")
    vs.append(v)

    # P25 ---------------------------------------------------------------------------------------
    v = Vignette("p25-b-t1114-present-freetext", "vg-p25", "1955-02-18", "male",
                 "t(11;14) present in a free-text FISH report; VRd then lenalidomide maintenance (no ASCT, 71 y), "
                 "progression on maintenance -> lenalidomide-refractory, PI-sensitive: VenVd is an option.")
    v.mm("2024-02-26", "snomed")
    v.fish_report("2024-03-01", "CCND1/IGH fusion consistent with t(11;14)(q13;q32) DETECTED in 62% of nuclei. "
                                "TP53 (17p13.1) deletion not detected. FGFR3/IGH t(4;14) not detected.")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2024-03-11", "2024-08-26", enc="rx-in")
    v.statement("lenalidomide", "2024-09-09", "2026-09-11", status="stopped", enc="rx-in",
                dosage="10 mg PO daily days 1-21 (maintenance)")
    v.disease_status("2026-09-08", "worsened")
    v.supportive(ASPIRIN, "2024-03-11")
    v.ecog("2026-09-08", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "refractory", "dexamethasone": "exposed"},
                       classes={"IMiD": "refractory", "PI": "exposed", "anti-CD38": "naive"},
                       progressedOnLenalidomideMaintenance=True,
                       cytogenetics={"tested": True, "findings": ["t(11;14)"], "t11_14": True}, frail=False),
        "why": "t(11;14) detected (not high risk); highRisk not asserted (1q / t(14;16) not reported).",
        "setting": "first-relapse-len-refractory",
        "options_include": ["VenVd"], "preferred_exclude": LEN_REGIMENS,
        "notices_exclude": ["high-risk-cytogenetics"],
        "notes": "000: VenVd for t(11;14) with len-refractory, PI-sensitive disease (BELLINI).",
    }
    v.order("o1-venvd-t1114-present", "order-select", [
        v.draft_med("draft-ven", "venetoclax", "text", text="Venclexta 100 mg tablet", dosage="800 mg PO daily"),
        v.draft_med("draft-btz", "bortezomib", "rx-in", dosage="1.3 mg/m2 SC", route="Subcutaneous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO"),
    ], {"findings_exclude": ["venetoclax-without-t11-14", "venetoclax-t11-14-unknown", "refractory-agent-ordered"],
        "why": "t(11;14) documented: venetoclax is appropriate."},
        "VenVd drafted with documented t(11;14).")
    vs.append(v)

    # P26 ---------------------------------------------------------------------------------------
    v = Vignette("p26-b-neuropathy-toxicity-stop", "vg-p26", "1954-03-22", "female",
                 "VRd: bortezomib stopped after 3 cycles for neuropathy (statusReason 407563006), Rd continued until "
                 "progression (mCODE). Condition drug-induced polyneuropathy (ICD-10-CM G62.0).")
    v.mm("2023-02-20", "snomed")
    v.statement("bortezomib", "2023-03-06", "2023-05-29", status="stopped", enc="rx-in", reason="toxicity")
    v.statement("lenalidomide", "2023-03-06", "2026-09-10", status="stopped", enc="rx-in")
    v.statement("dexamethasone", "2023-03-06", "2026-09-10", status="stopped", enc="rx-in")
    v.condition([(ICD10CM, "G62.0", "Drug-induced polyneuropathy")], "2023-05-20",
                "Peripheral neuropathy due to bortezomib")
    v.disease_status("2026-09-07", "worsened")
    v.supportive(ASPIRIN, "2023-03-06")
    v.ecog("2026-09-07", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "refractory", "dexamethasone": "refractory"},
                       classes={"IMiD": "refractory", "PI": "exposed", "anti-CD38": "naive"},
                       doubleRefractory=False, cytogenetics=no_cyto(), frail=False),
        "why": "Bortezomib stopped for toxicity 3 years before progression -> exposed (a toxicity stop is not "
               "progression, and stopping one drug does not end the line); len/dex refractory.",
        "setting": "first-relapse-len-refractory",
        "preferred_exclude": LEN_REGIMENS, "avoid_include": ["DRd"],
    }
    v.order("o1-bortezomib-iv-neuropathy", "order-select", [
        v.draft_med("draft-pom", "pomalidomide", "rx-in", dosage="4 mg PO days 1-14"),
        v.draft_med("draft-btz", "bortezomib", "rx-in", dosage="1.3 mg/m2 IV push days 1, 4, 8, 11",
                    route="Intravenous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO"),
    ], {"findings_include": [finding("bortezomib-route-neuropathy", ["bortezomib"], ["MedicationRequest/draft-btz"])],
        "findings_exclude": ["refractory-agent-ordered"],
        "why": "Bortezomib IV in a patient with peripheral neuropathy -> suggest subcutaneous (002); bortezomib "
               "and pomalidomide are not refractory."},
        "PVd with intravenous bortezomib in a patient with neuropathy.")
    vs.append(v)

    # P27 ---------------------------------------------------------------------------------------
    v = Vignette("p27-a-vtd-thalidomide-text-28mo", "vg-p27", "1969-05-16", "male",
                 "VTd induction written as brand texts ('Thalomid 100 mg capsule', 'Velcade 1.3 mg/m2 SC', "
                 "'Decadron 40 mg'), ASCT (SNOMED 234336002) without maintenance; relapse 28 months later "
                 "(C90.02 + mCODE). Lenalidomide-naive.")
    v.mm("2024-01-22", "both")
    v.statement("thalidomide", "2024-02-05", "2024-04-29", enc="text", text="Thalomid 100 mg capsule")
    v.statement("bortezomib", "2024-02-05", "2024-04-29", enc="text", text="Velcade 1.3 mg/m2 SC")
    v.statement("dexamethasone", "2024-02-05", "2024-04-29", enc="text", text="Decadron 40 mg")
    v.transplant("2024-06-17", "234336002")
    v.relapse_c9002("2026-10-22")
    v.disease_status("2026-10-22", "worsened")
    v.ecog("2026-10-22", 0)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"thalidomide": "exposed", "bortezomib": "exposed", "dexamethasone": "exposed"},
                       classes={"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"},
                       progressedOnLenalidomideMaintenance=False,
                       transplant={"priorASCT": True, "monthsAsctToProgression": [27, 29], "salvageASCT": "candidate"},
                       frail=False),
        "why": "ASCT 2024-06-17 -> relapse 2026-10-22 = 28 months without maintenance: >= 18 and >= 24 -> "
               "candidate; lenalidomide never given -> len-sensitive.",
        "setting": "first-relapse-len-sensitive",
        "preferred_include": ["DRd"],
        "notices_include": ["salvage-asct-candidate"],
        "notices_exclude": ["salvage-asct-discuss", "salvage-asct-not-recommended"],
    }
    vs.append(v)

    # P28 ---------------------------------------------------------------------------------------
    v = Vignette("p28-d-dara-refractory-not-tcr-mr-cycles", "vg-p28", "1950-10-10", "female",
                 "Setting D, anti-CD38 and IMiD refractory but PI only exposed: VRd x8 (ATC codes) then, after "
                 "relapse, DRd per 28-day cycle (MedicationRequests) until relapse (C90.02).")
    v.mm("2020-12-21", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2021-01-11", "2021-07-12", enc="atc")
    v.disease_status("2022-11-07", "worsened")
    v.cycles([("daratumumab", "rx-in", None, None), ("lenalidomide", "rx-product", "25", None),
              ("dexamethasone", "rx-in", None, None)], "2022-11-21", 49, 28, last_status="stopped")
    v.relapse_c9002("2026-09-14")
    v.supportive(ASPIRIN, "2022-11-21")
    v.ecog("2026-09-14", 1)
    v.expect = {
        "state": state(priorLines=2,
                       agents={"bortezomib": "exposed", "lenalidomide": "refractory", "daratumumab": "refractory",
                               "dexamethasone": "refractory"},
                       classes={"IMiD": "refractory", "PI": "exposed", "anti-CD38": "refractory"},
                       doubleRefractory=False, tripleClassExposed=True, tripleClassRefractory=False,
                       pentaRefractory=False, cytogenetics=no_cyto(), frail=False),
        "why": "VRd fixed course ended 2021-07, relapse 2022-11 (> 60 days) -> exposed; DRd until relapse "
               "2026-09-14 -> dara + len refractory; PI not refractory -> not TCR.",
        "setting": "later-relapse",
        "preferred_exclude": sorted(set(ANTI_CD38_REGIMENS + LEN_REGIMENS)),
        "options_include": ["KPd"],
        "notices_include": ["clinical-trial"],
    }
    vs.append(v)

    # P29 ---------------------------------------------------------------------------------------
    v = Vignette("p29-insufficient-relapse-condition-only", "vg-p29", "1957-07-07", "male",
                 "Only a Condition 'multiple myeloma in relapse' (C90.02) - no treatment history: "
                 "insufficient-data, not a guess.")
    v.relapse_c9002("2026-08-10")
    v.expect = {
        "state": state(agents={}, classes=NAIVE3, cytogenetics=no_cyto()),
        "why": "Relapse without any usable treatment history: lines and refractoriness unknown.",
        "setting": "insufficient-data",
        "notices_include": ["insufficient-data"],
    }
    vs.append(v)

    # P30 ---------------------------------------------------------------------------------------
    v = Vignette("p30-insufficient-unidentifiable-local-chemo", "vg-p30", "1963-03-15", "female",
                 "Myeloma with treatment recorded only as an unidentifiable local protocol code ('CHEMO PROTOCOL "
                 "MM-7 CYCLE 3'): nothing is guessed -> insufficient-data.")
    v.mm("2025-09-01", "snomed")
    for i, start in enumerate(("2025-09-15", "2025-10-13", "2025-11-10")):
        v.res["medicationRequests"].append({
            "resourceType": "MedicationRequest", "id": f"vg-p30-mr-proto-{i}", "status": "completed",
            "intent": "order", "subject": v.subject, "authoredOn": start,
            "medicationCodeableConcept": {"coding": [{"system": LOCAL_FORMULARY, "code": f"PROTO-MM7-C{i + 1}",
                                                      "display": f"CHEMO PROTOCOL MM-7 CYCLE {i + 1}"}]}})
    v.expect = {
        "state": state(agents={}, classes=NAIVE3),
        "why": "An unknown code falls back to its display; a protocol name names no agent (issue 3).",
        "setting": "insufficient-data",
        "notices_include": ["insufficient-data"],
    }
    vs.append(v)

    # P31 ---------------------------------------------------------------------------------------
    v = Vignette("p31-b-vrd-continuous-double-refractory", "vg-p31", "1958-06-06", "female",
                 "VRd given continuously (no ASCT, patient declined) per 28-day cycle as MedicationRequests until "
                 "progression; the last cycle is stopped with statusReason 'no response'. Lenalidomide AND "
                 "bortezomib refractory at first relapse: PVd/DVd must not be preferred.")
    v.mm("2023-08-21", "snomed")
    v.cycles([("bortezomib", "atc", None, "bortezomib 1.3 mg/m2 SC weekly"),
              ("lenalidomide", "rx-product", "15", None), ("dexamethasone", "rx-in", None, None)],
             "2023-09-04", 37, 28, last_status="stopped", last_reason="progression", last_end="2026-09-21")
    v.supportive(ASPIRIN, "2023-09-04")
    v.ecog("2026-09-21", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "refractory", "lenalidomide": "refractory",
                               "dexamethasone": "refractory"},
                       classes={"IMiD": "refractory", "PI": "refractory", "anti-CD38": "naive"},
                       doubleRefractory=True, tripleClassExposed=False, tripleClassRefractory=False,
                       pentaRefractory=False, cytogenetics=no_cyto(), frail=False,
                       transplant={"priorASCT": False, "monthsAsctToProgression": None, "salvageASCT": "candidate"}),
        "why": "Progression on continuous VRd (statusReason no response on the last cycle, 2026-09-21): len and "
               "bortezomib refractory -> double-refractory at first relapse. Never transplanted, 68 y, ECOG 1 "
               "(fit, <= 70) -> transplant-eligible: salvage ASCT to consider (003, 002).",
        "notices_include": ["salvage-asct-candidate"],
        "setting": "first-relapse-len-refractory",
        "preferred_include": ["DKd"],
        "preferred_exclude": LEN_REGIMENS + ["PVd", "DVd", "Vd", "VCd", "VMP", "SVd", "VenVd", "EloVd"],
        "avoid_include": ["DRd"],
        "notes": "Never a regimen with a refractory agent as preferred (002/issue 4); DKd [1A] keeps two "
                 "non-refractory drugs (agent-level: carfilzomib is not bortezomib).",
    }
    vs.append(v)

    # P32 ---------------------------------------------------------------------------------------
    v = Vignette("p32-d-toxicity-substitution-new-line", "vg-p32", "1962-02-02", "male",
                 "VRd; bortezomib replaced by carfilzomib after 3 cycles for neuropathy (statusReason 407563006) "
                 "-> KRd is a new line (IMWG: substitution for any reason) that makes nothing refractory; "
                 "progression on KRd -> 2 prior lines.")
    v.mm("2022-12-19", "snomed")
    v.statement("bortezomib", "2023-01-09", "2023-03-27", status="stopped", enc="rx-in", reason="toxicity")
    v.statement("lenalidomide", "2023-01-09", "2026-09-04", status="stopped", enc="rx-in")
    v.statement("dexamethasone", "2023-01-09", "2026-09-04", status="stopped", enc="rx-in")
    v.statement("carfilzomib", "2023-04-03", "2026-09-04", status="stopped", enc="rx-product", product="60")
    v.disease_status("2023-08-07", "improved")
    v.disease_status("2026-08-31", "worsened")
    v.ecog("2026-08-31", 1)
    v.expect = {
        "state": state(priorLines=2,
                       agents={"bortezomib": "exposed", "carfilzomib": "refractory", "lenalidomide": "refractory",
                               "dexamethasone": "refractory"},
                       classes={"IMiD": "refractory", "PI": "refractory", "anti-CD38": "naive"},
                       doubleRefractory=True, tripleClassExposed=False, tripleClassRefractory=False,
                       cytogenetics=no_cyto(), frail=False),
        "why": "CLINICAL_LOGIC §1: 'A change of agents for toxicity starts a new line but makes nothing "
               "refractory' -> VRd (line 1), KRd (line 2); progression 2026-08-31 on KRd -> carfilzomib + len "
               "refractory, bortezomib exposed.",
        "setting": "later-relapse",
        "preferred_include": ["IsaPd"],
        "preferred_exclude": ["KRd", "Kd", "DKd", "IsaKd", "KPd", "DRd", "Rd", "IRd", "EloRd"],
        "notices_include": ["clinical-trial"],
    }
    vs.append(v)

    # P33 ---------------------------------------------------------------------------------------
    v = Vignette("p33-d-retreatment-after-tfi-partial-dates", "vg-p33", "1957-09-09", "male",
                 "VRd x8 with month-only dates ('2021-05' to '2021-11'), planned treatment-free interval, relapse "
                 "2023 (mCODE), VRd restarted (timezone datetimes) until progression (C90.02): a restart after a "
                 "treatment-free interval is a new line -> 2 prior lines, double-refractory.")
    v.mm("2021-04", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2021-05", "2021-11", enc="rx-in")
    v.disease_status("2023-10-02", "worsened")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2023-10-16T08:00:00-05:00", "2026-09-18T17:30:00-05:00", status="stopped", enc="rx-in")
    v.relapse_c9002("2026-09-14")
    v.ecog("2026-09-14", 1)
    v.expect = {
        "state": state(priorLines=2,
                       agents={"bortezomib": "refractory", "lenalidomide": "refractory",
                               "dexamethasone": "refractory"},
                       classes={"IMiD": "refractory", "PI": "refractory", "anti-CD38": "naive"},
                       doubleRefractory=True, tripleClassExposed=False, tripleClassRefractory=False,
                       cytogenetics=no_cyto(), frail=False),
        "why": "CLINICAL_LOGIC §1: treatment restarting after a planned treatment-free interval is a new line; "
               "progression on the second VRd -> len + bortezomib refractory.",
        "setting": "later-relapse",
        "preferred_include": ["DKd"],
        "preferred_exclude": ["DVd", "PVd", "DRd", "KRd", "Rd", "VCd", "Vd", "SVd", "IRd", "EloRd"],
        "notices_include": ["clinical-trial"],
    }
    vs.append(v)

    # P34 ---------------------------------------------------------------------------------------
    v = Vignette("p34-b-len-maintenance-holiday", "vg-p34", "1966-06-16", "female",
                 "VRd x4, ASCT (CPT 38241), lenalidomide maintenance with a 6-week drug holiday for surgery "
                 "(two MedicationStatements), progression on maintenance 33 months after ASCT.")
    v.mm("2023-04-17", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2023-05-01", "2023-08-21", enc="rx-in")
    v.transplant("2023-10-09", "38241")
    v.statement("lenalidomide", "2023-12-04", "2025-03-31", enc="rx-product", product="10",
                dosage="10 mg PO daily (maintenance)")
    v.statement("lenalidomide", "2025-05-12", "2026-07-22", status="stopped", enc="rx-product", product="10",
                dosage="10 mg PO daily (maintenance resumed after surgery)")
    v.disease_status("2026-07-20", "worsened")
    v.supportive(ASPIRIN, "2023-12-04")
    v.ecog("2026-07-20", 0)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "refractory", "dexamethasone": "exposed"},
                       classes={"IMiD": "refractory", "PI": "exposed", "anti-CD38": "naive"},
                       progressedOnLenalidomideMaintenance=True, cytogenetics=no_cyto(),
                       transplant={"priorASCT": True, "monthsAsctToProgression": [32, 34], "salvageASCT": "discuss"},
                       frail=False),
        "why": "Drug holidays are not new lines (IMWG) -> 1 line; progression on maintenance -> len refractory; "
               "ASCT 2023-10-09 -> 2026-07-20 = 33 months with maintenance: >= 18, < 36 -> discuss.",
        "setting": "first-relapse-len-refractory",
        "preferred_include": ["PVd"], "preferred_exclude": LEN_REGIMENS, "avoid_include": ["DRd"],
        "notices_include": ["salvage-asct-discuss"],
        "notices_exclude": ["salvage-asct-candidate", "salvage-asct-not-recommended"],
    }
    vs.append(v)

    # P35 ---------------------------------------------------------------------------------------
    v = Vignette("p35-b-dara-toxicity-stop-exposed", "vg-p35", "1953-01-11", "male",
                 "DRd: daratumumab stopped after 2 doses for an infusion reaction (MedicationRequest with "
                 "statusReason 407563006 referencing a Medication resource), Rd continued until progression: "
                 "anti-CD38 exposed, not refractory -> setting B with anti-CD38 regimens still available.")
    v.mm("2023-05-22", "icd")
    v.cycles([("daratumumab", "rx-product", "iv", None)], "2023-06-05", 1, 8, how="ref", last_status="stopped",
             last_reason="toxicity", last_end="2023-06-12")
    v.statement("lenalidomide", "2023-06-05", "2026-08-27", status="stopped", enc="rx-in")
    v.statement("dexamethasone", "2023-06-05", "2026-08-27", status="stopped", enc="rx-in")
    v.disease_status("2026-08-24", "worsened")
    v.supportive(ASPIRIN, "2023-06-05")
    v.ecog("2026-08-24", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"daratumumab": "exposed", "lenalidomide": "refractory", "dexamethasone": "refractory"},
                       classes={"IMiD": "refractory", "PI": "naive", "anti-CD38": "exposed"},
                       doubleRefractory=False, tripleClassExposed=False, tripleClassRefractory=False,
                       cytogenetics=no_cyto(), frail=False),
        "why": "Daratumumab stopped for toxicity 3 years before progression -> exposed; stopping one drug does "
               "not end the line; progression on Rd -> len refractory.",
        "setting": "first-relapse-len-refractory",
        "preferred_include": ["PVd"], "preferred_exclude": LEN_REGIMENS,
        "options_include": ["DKd", "IsaKd"], "avoid_include": ["DRd"],
        "notes": "Anti-CD38 exposed (toxicity) but not refractory: anti-CD38 regimens stay available (004: EMMY "
                 "PFS 9.5 mo non-refractory).",
    }
    v.order("o1-dkd-dara-exposed-only", "order-select", [
        v.draft_med("draft-dara", "daratumumab-sc", "rx-product", dosage="1800 mg SC", route="Subcutaneous"),
        v.draft_med("draft-cfz", "carfilzomib", "rx-in", dosage="56 mg/m2 IV", route="Intravenous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO"),
    ], {"findings_exclude": ["anti-cd38-retreatment", "anti-cd38-cross-resistance", "refractory-agent-ordered"],
        "why": "Daratumumab was stopped for an infusion reaction, not progression: exposed, so re-treatment is "
               "no 'refractory' re-order (004 concerns anti-CD38-refractory patients)."},
        "DKd drafted for a patient only exposed to daratumumab (toxicity stop).")
    vs.append(v)

    # P36 ---------------------------------------------------------------------------------------
    v = Vignette("p36-b-status-noise-ignored", "vg-p36", "1961-03-03", "male",
                 "Records that must be ignored: a daratumumab MedicationStatement entered-in-error, a cancelled "
                 "pomalidomide MedicationRequest, a not-taken thalidomide statement, a not-done tandem transplant, "
                 "an entered-in-error 'worsened' disease status, and an OperationOutcome entry in the searchset. "
                 "Real story: VRd-ASCT-len maintenance, progression 40 months after ASCT.")
    v.mm("2022-11-07", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2022-12-05", "2023-03-27", enc="rx-in")
    v.transplant("2023-05-15", "58776007")
    v.statement("lenalidomide", "2023-07-10", "2026-09-10", status="stopped", enc="rx-in",
                dosage="10 mg PO daily (maintenance)")
    v.statement("daratumumab", "2024-02-01", "2024-03-01", status="entered-in-error", enc="rx-in")
    v.statement("thalidomide", "2024-05-01", "2024-06-01", status="not-taken", enc="rx-in")
    v.res["medicationRequests"].append({
        "resourceType": "MedicationRequest", "id": "vg-p36-mr-pom-cancelled", "status": "cancelled",
        "intent": "order", "medicationCodeableConcept": concept("pomalidomide", "rx-in"), "subject": v.subject,
        "authoredOn": "2025-01-10", "dosageInstruction": [{"text": "4 mg PO days 1-21"}]})
    v.res["procedures"].append({
        "resourceType": "Procedure", "id": "vg-p36-proc-tandem-not-done", "status": "not-done",
        "code": {"coding": [{"system": SNOMED, "code": "58776007",
                             "display": "Autologous bone marrow transplant (procedure)"}]},
        "subject": v.subject, "performedDateTime": "2023-08-14"})
    v.disease_status("2023-07-03", "improved")
    v.disease_status("2025-01-06", "worsened")
    v.res["observations"][-1]["status"] = "entered-in-error"
    v.disease_status("2025-01-07", "stable")
    v.disease_status("2026-09-07", "worsened")
    v.outcomes["observations"] = [{"resourceType": "OperationOutcome", "id": "vg-p36-oo-1", "issue": [{
        "severity": "warning", "code": "suppressed",
        "diagnostics": "Some results are restricted and were not returned."}]}]
    v.ecog("2026-09-07", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "refractory", "dexamethasone": "exposed"},
                       classes={"IMiD": "refractory", "PI": "exposed", "anti-CD38": "naive"},
                       doubleRefractory=False, tripleClassExposed=False, progressedOnLenalidomideMaintenance=True,
                       cytogenetics=no_cyto(),
                       transplant={"priorASCT": True, "monthsAsctToProgression": [39, 41], "salvageASCT": "candidate"},
                       frail=False),
        "why": "entered-in-error / cancelled / not-taken / not-done records never happened (FHIR status "
               "semantics); the only real progression is 2026-09-07, 39.7 months after ASCT, with maintenance "
               ">= 36 -> candidate.",
        "setting": "first-relapse-len-refractory",
        "preferred_include": ["PVd"], "preferred_exclude": LEN_REGIMENS, "avoid_include": ["DRd"],
        "notices_include": ["salvage-asct-candidate"],
        "notices_exclude": ["salvage-asct-discuss", "salvage-asct-not-recommended", "short-response"],
    }
    vs.append(v)

    # P37 ---------------------------------------------------------------------------------------
    v = Vignette("p37-not-relapsed-g-per-l-erroneous-relapse", "vg-p37", "1959-04-14", "female",
                 "On lenalidomide maintenance; M-protein reported in g/L (UCUM g/L): nadir 10 -> 13 g/L = "
                 "+0.3 g/dL (below 0.5 g/dL) -> no progression; a C90.02 relapse Condition with verificationStatus "
                 "entered-in-error must be ignored -> not-relapsed.")
    v.mm("2023-07-24", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2023-08-07", "2023-11-27", enc="rx-in")
    v.transplant("2024-02-05", "234336002")
    v.statement("lenalidomide", "2024-04-01", None, status="active", enc="rx-in",
                dosage="10 mg PO daily (maintenance)")
    for when, val in (("2023-07-24", 38.0), ("2024-08-05", 10.0), ("2025-08-04", 10.0), ("2026-04-06", 12.0),
                      ("2026-09-07", 13.0)):
        v.obs((LOINC, "33358-3", "Protein.monoclonal [Mass/volume] in Serum or Plasma by Electrophoresis"), when,
              "laboratory", valueQuantity={"value": val, "unit": "g/L", "system": "http://unitsofmeasure.org",
                                           "code": "g/L"})
    v.relapse_c9002("2026-09-01")
    v.res["conditions"][-1]["verificationStatus"] = {"coding": [{"system": COND_VER, "code": "entered-in-error"}]}
    del v.res["conditions"][-1]["clinicalStatus"]  # R4: no clinicalStatus when entered-in-error
    v.disease_status("2026-09-07", "stable")
    v.ecog("2026-09-07", 0)
    v.expect = {
        "state": state(agents={"bortezomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed"},
                       classes={"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"},
                       progressedOnLenalidomideMaintenance=False,
                       transplant={"priorASCT": True, "monthsAsctToProgression": None}, frail=False),
        "why": "13 - 10 g/L = 3 g/L = 0.3 g/dL < 0.5 g/dL (IMWG); an entered-in-error Condition is not evidence.",
        "setting": "not-relapsed",
        "notices_exclude": ["salvage-asct-candidate", "salvage-asct-discuss", "salvage-asct-not-recommended",
                            "short-response", "insufficient-data"],
        "avoid_exclude": ["DRd"],
    }
    vs.append(v)

    # P38 ---------------------------------------------------------------------------------------
    v = Vignette("p38-b-medication-ingredient-only", "vg-p38", "1960-10-10", "male",
                 "Lenalidomide maintenance ordered per cycle through a Medication resource whose code is only a "
                 "generic pharmacy label; the drug is named by Medication.ingredient (RxNorm 342369). Progression "
                 "on maintenance 34 months after ASCT (CPT 38241).")
    v.mm("2023-03-20", "icd")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2023-04-03", "2023-07-24", enc="rx-in")
    v.transplant("2023-09-11", "38241")
    med = {"resourceType": "Medication", "id": "vg-p38-med-oral-chemo",
           "code": {"text": "ORAL ANTINEOPLASTIC CAPSULE (REMS)"},
           "ingredient": [{"itemCodeableConcept": concept("lenalidomide", "rx-in"),
                           "strength": {"numerator": {"value": 10, "unit": "mg", "system": "http://unitsofmeasure.org",
                                                      "code": "mg"},
                                        "denominator": {"value": 1, "unit": "capsule"}}}]}
    v.includes["medicationRequests"].append(med)
    start = d("2023-11-06")
    for i in range(36):  # 36 cycles: the last one (2026-07-09..29) covers the progression
        cs, ce = start + timedelta(days=28 * i), start + timedelta(days=28 * i + 20)
        v.res["medicationRequests"].append({
            "resourceType": "MedicationRequest", "id": v.nid("mr"), "status": "completed" if i < 35 else "stopped",
            "intent": "order", "medicationReference": {"reference": "Medication/vg-p38-med-oral-chemo"},
            "subject": v.subject, "authoredOn": iso(cs - timedelta(days=3)),
            "dosageInstruction": [{"text": "10 mg PO days 1-21 (maintenance)",
                                   "timing": {"repeat": {"boundsPeriod": {"start": iso(cs), "end": iso(ce)}}}}]})
    v.disease_status("2026-07-20", "worsened")
    v.supportive(ASPIRIN, "2023-11-06")
    v.ecog("2026-07-20", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "refractory", "dexamethasone": "exposed"},
                       classes={"IMiD": "refractory", "PI": "exposed", "anti-CD38": "naive"},
                       progressedOnLenalidomideMaintenance=True,
                       transplant={"priorASCT": True, "monthsAsctToProgression": [33, 35], "salvageASCT": "discuss"},
                       frail=False),
        "why": "The last maintenance cycle (2026-07-09..29) covers the progression of 2026-07-20 -> len refractory; "
               "ASCT 2023-09-11 -> 34 months with maintenance -> discuss.",
        "setting": "first-relapse-len-refractory",
        "preferred_include": ["PVd"], "preferred_exclude": LEN_REGIMENS, "avoid_include": ["DRd"],
        "notices_include": ["salvage-asct-discuss"],
    }
    vs.append(v)

    # P39 ---------------------------------------------------------------------------------------
    v = Vignette("p39-b-active-statement-text-pd", "vg-p39", "1956-12-12", "female",
                 "Lenalidomide maintenance as a patient-reported MedicationStatement: status active, "
                 "effectiveDateTime only (no period). Progression only as a disease-status Observation (97509-4) "
                 "whose value is text 'Progressive disease (IMWG)' without a code.")
    v.mm("2023-01-23", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2023-02-06", "2023-06-26", enc="rx-in")
    v.res["medicationStatements"].append({
        "resourceType": "MedicationStatement", "id": "vg-p39-ms-len-maint", "status": "active",
        "medicationCodeableConcept": concept("lenalidomide", "rx-product", "10g"), "subject": v.subject,
        "effectiveDateTime": "2023-07-10", "dateAsserted": "2026-06-01",
        "dosage": [{"text": "10 mg by mouth daily on days 1-21 of each 28-day cycle (maintenance)"}]})
    v.obs((LOINC, "97509-4", "Cancer disease status"), "2026-09-21", "exam",
          valueCodeableConcept={"text": "Progressive disease (IMWG)"})
    v.supportive(ASPIRIN, "2023-07-10")
    v.ecog("2026-09-21", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "refractory", "dexamethasone": "exposed"},
                       classes={"IMiD": "refractory", "PI": "exposed", "anti-CD38": "naive"},
                       progressedOnLenalidomideMaintenance=True, cytogenetics=no_cyto(), frail=False),
        "why": "An IMWG response of PD counts as progression (CLINICAL_LOGIC §1) even as text; the maintenance "
               "statement is active (ongoing) at that date -> len refractory on maintenance.",
        "setting": "first-relapse-len-refractory",
        "preferred_include": ["PVd"], "preferred_exclude": LEN_REGIMENS, "avoid_include": ["DRd"],
    }
    vs.append(v)

    # P40 ---------------------------------------------------------------------------------------
    v = Vignette("p40-b-t1416-del1p-short-response", "vg-p40", "1960-01-30", "male",
                 "FISH variants t(14;16) and del(1p32) present, t(11;14) and del(17p) absent; KRd x8 then "
                 "lenalidomide maintenance (no ASCT); M-protein progression 15 months after the start of "
                 "therapy -> high risk and short response.")
    v.mm("2025-05-19", "snomed")
    v.fish_variant("2025-05-21", "t(14;16)(q32;q23)", True, "t(14;16) IGH/MAF")
    v.fish_variant("2025-05-21", "del(1)(p32)", True, "del(1p32) CDKN2C loss", location="1p32")
    v.fish_variant("2025-05-21", "t(11;14)(q13;q32)", False, "t(11;14)")
    v.fish_variant("2025-05-21", "del(17)(p13.1)", False, "del(17p)", gene="TP53")
    v.statement("carfilzomib", "2025-06-02", "2026-01-12", enc="atc")
    v.statement("lenalidomide", "2025-06-02", "2026-01-12", enc="rx-in")
    v.statement("dexamethasone", "2025-06-02", "2026-01-12", enc="rx-in")
    v.statement("lenalidomide", "2026-02-02", "2026-09-20", status="stopped", enc="rx-in",
                dosage="10 mg PO days 1-21 (maintenance)")
    v.m_protein([("2025-05-19", 3.9), ("2025-10-06", 0.3), ("2026-01-05", 0.1), ("2026-06-01", 0.1),
                 ("2026-08-31", 0.7), ("2026-09-14", 0.9)])
    v.supportive(ASPIRIN, "2025-06-02")
    v.ecog("2026-09-14", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"carfilzomib": "exposed", "lenalidomide": "refractory", "dexamethasone": "exposed"},
                       classes={"IMiD": "refractory", "PI": "exposed", "anti-CD38": "naive"},
                       progressedOnLenalidomideMaintenance=True,
                       cytogenetics={"tested": True, "highRisk": True, "findings": ["del(1p)", "t(14;16)"],
                                     "t11_14": False},
                       transplant={"priorASCT": False, "monthsAsctToProgression": None}, frail=False),
        "why": "t(14;16) is high risk (002); M-protein nadir 0.1 -> 0.7/0.9 g/dL on maintenance -> len "
               "refractory; line start 2025-06-02 -> progression 2026-08/09 = 15 months < 18 -> short response.",
        "setting": "first-relapse-len-refractory",
        "preferred_exclude": LEN_REGIMENS,
        "notices_include": ["high-risk-cytogenetics", "short-response"],
    }
    vs.append(v)

    # P41 ---------------------------------------------------------------------------------------
    v = Vignette("p41-a-over-75-fit-vcd", "vg-p41", "1949-02-02", "female",
                 "77 years old, ECOG 0 (not frail, but > 75): VCd x6 with MedicationAdministrations referencing "
                 "Medication resources, relapse two years later; lenalidomide-naive.")
    v.mm("2024-02-19", "snomed")
    v.administrations("bortezomib", bortezomib_days("2024-03-04", 6, 28)[:24], enc="rx-in", how="ref",
                      route="Subcutaneous")
    v.administrations("cyclophosphamide", dates_every("2024-03-04", 7, 24), enc="rx-in", how="ref")
    v.administrations("dexamethasone", dates_every("2024-03-04", 7, 24), enc="rx-in", how="ref")
    v.disease_status("2026-08-10", "worsened")
    v.ecog("2026-08-10", 0)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "cyclophosphamide": "exposed", "dexamethasone": "exposed"},
                       classes={"IMiD": "naive", "PI": "exposed", "anti-CD38": "naive"},
                       progressedOnLenalidomideMaintenance=False, cytogenetics=no_cyto(), frail=False),
        "why": "ECOG 0 -> not frail; age 77 is the separate > 75 modifier (003: Rd alone or with ixazomib or "
               "elotuzumab); VCd ended 2024-08 -> exposed.",
        "setting": "first-relapse-len-sensitive",
        "options_include": ["IRd", "Rd"],
    }
    vs.append(v)

    # P42 ---------------------------------------------------------------------------------------
    v = Vignette("p42-a-maintenance-completed-2y", "vg-p42", "1963-08-08", "male",
                 "VRd x4, ASCT (SNOMED 58776007), planned 2-year lenalidomide maintenance completed in 2024; "
                 "progression 26 months after the last dose -> lenalidomide-sensitive (setting A).")
    v.mm("2021-10-04", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2021-10-18", "2022-02-07", enc="rx-in")
    v.transplant("2022-04-04", "58776007")
    v.statement("lenalidomide", "2022-06-06", "2024-06-03", status="completed", enc="rx-product", product="10",
                dosage="10 mg PO daily (maintenance, planned 2 years)")
    v.disease_status("2024-06-10", "stable")
    v.disease_status("2026-08-03", "worsened")
    v.ecog("2026-08-03", 0)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed"},
                       classes={"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"},
                       progressedOnLenalidomideMaintenance=False, cytogenetics=no_cyto(),
                       transplant={"priorASCT": True, "monthsAsctToProgression": [51, 53], "salvageASCT": "candidate"},
                       frail=False),
        "why": "Last lenalidomide 2024-06-03, progression 2026-08-03 (> 6 months): len-sensitive; ASCT "
               "2022-04-04 -> 52 months: candidate by both thresholds.",
        "setting": "first-relapse-len-sensitive",
        "preferred_include": ["DRd"], "avoid_exclude": ["DRd"],
        "notices_include": ["salvage-asct-candidate"],
    }
    vs.append(v)

    # P43 ---------------------------------------------------------------------------------------
    v = Vignette("p43-b-len-stopped-45-days-before", "vg-p43", "1958-05-05", "female",
                 "Rd (no ASCT): lenalidomide stopped (status completed, no reason) 45 days before progression "
                 "(Condition C90.02): within 60 days -> refractory (IMWG), whatever the reason it was stopped.")
    v.mm("2022-05-02", "icd")
    v.statement("lenalidomide", "2022-05-16", "2026-07-01", status="completed", enc="text",
                text="lenalidomide 15 mg capsule")
    v.statement("dexamethasone", "2022-05-16", "2026-07-01", status="completed", enc="rx-in")
    v.relapse_c9002("2026-08-15")
    v.supportive(ASPIRIN, "2022-05-16")
    v.ecog("2026-08-15", 1)
    v.expect = {
        "state": state(priorLines=1, agents={"lenalidomide": "refractory", "dexamethasone": "refractory"},
                       classes={"IMiD": "refractory", "PI": "naive", "anti-CD38": "naive"},
                       cytogenetics=no_cyto(), frail=False),
        "why": "Progression 2026-08-15 is 45 days after the last lenalidomide (2026-07-01): refractory by the "
               "60-day rule whatever the stop reason (CLINICAL_LOGIC §1).",
        "setting": "first-relapse-len-refractory",
        "preferred_include": ["PVd"], "preferred_exclude": LEN_REGIMENS, "avoid_include": ["DRd"],
    }
    v.order("o1-revlimid-text-draft", "order-sign", [
        v.draft_med("draft-len", "lenalidomide", "text", text="Revlimid 10 mg capsule", dosage="10 mg PO days 1-21"),
        v.draft_med("draft-elo", "elotuzumab", "rx-in", dosage="10 mg/kg IV", route="Intravenous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO weekly"),
    ], {"findings_include": [finding("refractory-agent-ordered", ["lenalidomide"], ["MedicationRequest/draft-len"])
                             | {"agents_exclude": ["elotuzumab"]}],
        "findings_exclude": ["missing-thromboprophylaxis"],
        "why": "EloRd ordered with lenalidomide written as text ('Revlimid 10 mg capsule') in a patient who "
               "progressed 45 days after lenalidomide; aspirin active in the chart."},
        "EloRd (Revlimid as text) signed for a lenalidomide-refractory patient.")
    v.order("o2-medication-entry-in-draft-bundle", "order-select", [
        {"resourceType": "Medication", "id": "med-len-draft", "code": concept("lenalidomide", "rx-product", "10")},
        {"resourceType": "MedicationRequest", "id": "draft-len-ref", "status": "draft", "intent": "order",
         "medicationReference": {"reference": "Medication/med-len-draft"}, "subject": v.subject, "authoredOn": AS_OF,
         "dosageInstruction": [{"text": "10 mg PO days 1-21 of 28"}]}],
        {"findings_include": [finding("refractory-agent-ordered", ["lenalidomide"], ["MedicationRequest/draft-len-ref"])],
         "why": "The draft names its drug through a Medication that is another entry of draftOrders."},
        "Lenalidomide draft referencing a Medication entry of the draft bundle.",
        selections=["MedicationRequest/draft-len-ref"])
    vs.append(v)

    # P44 ---------------------------------------------------------------------------------------
    v = Vignette("p44-not-relapsed-c9001-remission", "vg-p44", "1961-11-21", "male",
                 "Myeloma coded only as ICD-10-CM C90.01 (in remission) after a completed VRd course; no progression "
                 "since -> not-relapsed.")
    v.condition([(ICD10CM, "C90.01", "Multiple myeloma in remission")], "2024-09-02", "Multiple myeloma in remission",
                clinical="remission")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2024-01-08", "2024-08-26", enc="rx-in")
    v.disease_status("2025-03-03", "improved")
    v.disease_status("2026-09-07", "stable")
    v.ecog("2026-09-07", 0)
    v.expect = {
        "state": state(agents={"bortezomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed"},
                       classes={"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"},
                       doubleRefractory=False, cytogenetics=no_cyto(), frail=False),
        "why": "C90.01 is multiple myeloma (in remission); no progression evidence -> not relapsed.",
        "setting": "not-relapsed",
        "notices_exclude": ["insufficient-data", "short-response"],
    }
    vs.append(v)

    # P45 ---------------------------------------------------------------------------------------
    v = Vignette("p45-e-tcr-last-line-toxicity", "vg-p45", "1957-02-14", "female",
                 "Three lines: VRd-ASCT-len maintenance (progression), DVd (progression, Condition C90.02), KPd "
                 "stopped for toxicity then progression 5 months later: triple-class refractory from lines 1-2 while "
                 "carfilzomib and pomalidomide are only exposed.")
    v.mm("2019-09-02", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2019-09-16", "2020-01-06", enc="rx-in")
    v.transplant("2020-03-02", "234336002")
    v.statement("lenalidomide", "2020-05-04", "2022-10-07", status="stopped", enc="rx-in")
    v.disease_status("2022-10-03", "worsened")
    v.statement("daratumumab", "2022-10-17", "2025-09-26", status="stopped", enc="atc-old")
    v.statement("bortezomib", "2022-10-17", "2025-09-26", status="stopped", enc="rx-in")
    v.statement("dexamethasone", "2022-10-17", "2025-09-26", status="stopped", enc="rx-in")
    v.relapse_c9002("2025-09-22")
    v.statement("carfilzomib", "2025-10-06", "2026-03-30", status="stopped", enc="rx-in", reason="toxicity")
    v.statement("pomalidomide", "2025-10-06", "2026-03-30", status="stopped", enc="rx-in", reason="toxicity")
    v.statement("dexamethasone", "2025-10-06", "2026-03-30", status="stopped", enc="rx-in", reason="toxicity")
    v.disease_status("2026-08-31", "worsened")
    v.ecog("2026-08-31", 1)
    v.expect = {
        "state": state(priorLines=3,
                       agents={"bortezomib": "refractory", "lenalidomide": "refractory", "daratumumab": "refractory",
                               "carfilzomib": "exposed", "pomalidomide": "exposed"},
                       classes={"IMiD": "refractory", "PI": "refractory", "anti-CD38": "refractory"},
                       doubleRefractory=True, tripleClassExposed=True, tripleClassRefractory=True,
                       pentaRefractory=False, cytogenetics=no_cyto(), frail=False),
        "why": "Len refractory (maintenance), daratumumab + bortezomib refractory (DVd), KPd stopped for "
               "toxicity 154 days before progression -> exposed; class refractoriness needs any agent -> TCR.",
        "setting": "triple-class-refractory",
        "preferred_include": ["ide-cel", "cilta-cel"],
        "notices_include": ["clinical-trial"],
    }
    vs.append(v)

    # P46 ---------------------------------------------------------------------------------------
    v = Vignette("p46-b-monthly-oral-rx-no-bounds", "vg-p46", "1959-12-24", "male",
                 "Lenalidomide maintenance as 26 monthly outpatient prescriptions (MedicationRequest with authoredOn "
                 "and dispenseRequest 21 capsules / 28 days, no boundsPeriod) after VRd + ASCT; relapse (C90.02) "
                 "9 days after the last fill. Monthly refills are one line, not 26.")
    v.mm("2023-08-14", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2023-08-28", "2023-12-18", enc="rx-in")
    v.transplant("2024-02-19", "58776007")
    first = d("2024-04-22")
    for i in range(26):
        when = first + timedelta(days=28 * i)
        v.res["medicationRequests"].append({
            "resourceType": "MedicationRequest", "id": v.nid("mr"), "status": "completed", "intent": "order",
            "medicationCodeableConcept": concept("lenalidomide", "rx-product", "10"), "subject": v.subject,
            "authoredOn": iso(when),
            "dosageInstruction": [{"text": "Take 1 capsule (10 mg) by mouth daily on days 1-21 of each 28-day cycle"}],
            "dispenseRequest": {"quantity": {"value": 21, "unit": "capsule"},
                                "expectedSupplyDuration": {"value": 28, "unit": "days",
                                                           "system": "http://unitsofmeasure.org", "code": "d"}}})
    last_fill = first + timedelta(days=28 * 25)
    v.relapse_c9002(iso(last_fill + timedelta(days=9)))
    v.supportive(ASPIRIN, "2024-04-22")
    v.ecog(iso(last_fill + timedelta(days=9)), 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "refractory", "dexamethasone": "exposed"},
                       classes={"IMiD": "refractory", "PI": "exposed", "anti-CD38": "naive"},
                       progressedOnLenalidomideMaintenance=True, cytogenetics=no_cyto(),
                       transplant={"priorASCT": True, "monthsAsctToProgression": [25, 27], "salvageASCT": "discuss"},
                       frail=False),
        "why": f"Relapse {iso(last_fill + timedelta(days=9))}, 9 days after the last lenalidomide fill (within "
               "its 28-day supply) -> progression on maintenance; refills are one plan (one line); ASCT "
               "2024-02-19 -> ~26 months with maintenance -> discuss.",
        "setting": "first-relapse-len-refractory",
        "preferred_include": ["PVd"], "preferred_exclude": LEN_REGIMENS, "avoid_include": ["DRd"],
        "notices_include": ["salvage-asct-discuss"],
    }
    vs.append(v)

    # P48 ---------------------------------------------------------------------------------------
    v = Vignette("p48-a-fish-local-observations", "vg-p48", "1955-07-01", "female",
                 "FISH as local lab Observations: a variant (69548-6) whose value is text 'Not detected' for "
                 "t(11;14), and a local-coded probe Observation 'TP53 deletion (17p13.1) FISH' with valueString "
                 "'DETECTED in 45% of nuclei'. VRd x8 (no ASCT, 71 y), relapse 2026 (mCODE).")
    v.mm("2024-04-01", "snomed")
    v.obs((LOINC, "69548-6", "Genetic variant assessment"), "2024-04-05", "laboratory",
          valueCodeableConcept={"text": "Not detected"},
          method={"coding": [{"system": SNOMED, "code": "426329006", "display": "Fluorescence in situ hybridization"}]},
          component=[{"code": {"coding": [{"system": LOINC, "code": "81291-7", "display": "Variant ISCN"}]},
                      "valueCodeableConcept": {"coding": [{"system": ISCN, "code": "t(11;14)(q13;q32)"}],
                                               "text": "CCND1/IGH t(11;14)"}}])
    v.obs(("http://hospital.example.org/fhir/CodeSystem/lab", "FISH-TP53", "TP53 deletion (17p13.1) FISH"),
          "2024-04-05", "laboratory", valueString="DETECTED in 45% of nuclei",
          method={"coding": [{"system": SNOMED, "code": "426329006", "display": "Fluorescence in situ hybridization"}]})
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2024-04-15", "2024-10-28", enc="rx-in")
    v.disease_status("2026-09-28", "worsened")
    v.ecog("2026-09-28", 1)
    v.expect = {
        "state": state(priorLines=1,
                       agents={"bortezomib": "exposed", "lenalidomide": "exposed", "dexamethasone": "exposed"},
                       classes={"IMiD": "exposed", "PI": "exposed", "anti-CD38": "naive"},
                       cytogenetics={"tested": True, "highRisk": True, "findings": ["del(17p)"], "t11_14": False},
                       frail=False),
        "why": "del(17p) detected (high risk); t(11;14) 'Not detected' is a documented negative -> false.",
        "setting": "first-relapse-len-sensitive",
        "options_exclude": ["VenVd"],
        "notices_include": ["high-risk-cytogenetics"],
    }
    v.order("o1-venetoclax-local-negative", "order-select", [
        v.draft_med("draft-ven", "venetoclax", "rx-in", dosage="800 mg PO daily"),
        v.draft_med("draft-btz", "bortezomib", "rx-in", dosage="1.3 mg/m2 SC", route="Subcutaneous"),
        v.draft_med("draft-dex", "dexamethasone", "rx-in", dosage="20 mg PO"),
    ], {"findings_include": [finding("venetoclax-without-t11-14", ["venetoclax"], ["MedicationRequest/draft-ven"])],
        "findings_exclude": ["venetoclax-t11-14-unknown"],
        "why": "t(11;14) 'Not detected' (text value) is absent, not unknown -> critical."},
        "Venetoclax drafted after a local FISH result 't(11;14) not detected'.")
    vs.append(v)

    # P49 ---------------------------------------------------------------------------------------
    v = Vignette("p49-e-after-isakd-and-teclistamab", "vg-p49", "1960-03-08", "male",
                 "Three lines: VRd-ASCT-len maintenance; IsaKd (isatuximab as text 'Sarclisa 10 mg/kg IV') until "
                 "progression -> triple-class refractory; teclistamab (RxNorm product code) until progression.")
    v.mm("2019-11-04", "snomed")
    for ag in ("bortezomib", "lenalidomide", "dexamethasone"):
        v.statement(ag, "2019-11-18", "2020-03-09", enc="rx-in")
    v.transplant("2020-05-04", "234336002")
    v.statement("lenalidomide", "2020-07-06", "2022-09-16", status="stopped", enc="rx-in")
    v.disease_status("2022-09-12", "worsened")
    v.statement("isatuximab", "2022-09-26", "2025-05-30", status="stopped", enc="text", text="Sarclisa 10 mg/kg IV")
    v.statement("carfilzomib", "2022-09-26", "2025-05-30", status="stopped", enc="rx-in")
    v.statement("dexamethasone", "2022-09-26", "2025-05-30", status="stopped", enc="rx-in")
    v.disease_status("2025-05-26", "worsened")
    v.administrations("teclistamab", weekly_then("2025-06-16", [(7, 20), (14, 26)]), enc="rx-product",
                      route="Subcutaneous")
    v.disease_status("2026-09-21", "worsened")
    v.ecog("2026-09-21", 1)
    v.expect = {
        "state": state(priorLines=3,
                       agents={"bortezomib": "exposed", "lenalidomide": "refractory", "isatuximab": "refractory",
                               "carfilzomib": "refractory", "teclistamab": "refractory", "dexamethasone": "exposed"},
                       classes={"IMiD": "refractory", "PI": "refractory", "anti-CD38": "refractory"},
                       doubleRefractory=True, tripleClassExposed=True, tripleClassRefractory=True,
                       pentaRefractory=False, cytogenetics=no_cyto(), frail=False),
        "why": "Isatuximab (anti-CD38) and carfilzomib refractory on IsaKd, len on maintenance -> TCR; teclistamab "
               "given every 1-2 weeks until progression 2026-09-21 -> refractory; pomalidomide and daratumumab "
               "never given -> not penta. Dexamethasone last 2025-05-30 (> 60 days) -> exposed.",
        "setting": "triple-class-refractory",
        "preferred_exclude": ["IsaKd", "IsaPd", "DKd", "DPd", "KRd", "Kd", "teclistamab"],
        "notices_include": ["clinical-trial"],
    }
    v.order("o1-teclistamab-reordered", "order-select", [
        v.draft_med("draft-tec", "teclistamab", "rx-product", dosage="1.5 mg/kg SC weekly", route="Subcutaneous"),
    ], {"findings_include": [finding("refractory-agent-ordered", ["teclistamab"], ["MedicationRequest/draft-tec"])],
        "why": "Teclistamab re-ordered after progression on it (agent-level refractoriness, beyond the 3 classes)."},
        "Teclistamab re-ordered after progression on teclistamab.")
    vs.append(v)

    return vs


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def _dump(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    EXPECTED.parent.mkdir(parents=True, exist_ok=True)
    for old in FIXTURES.glob("*.json"):
        old.unlink()
    expected: dict[str, Any] = {}
    variants: dict[str, Any] = {}
    for v in build():
        pv_file = f"{v.key}.json"
        _dump(FIXTURES / pv_file, v.request("patient-view", "pv"))
        exp = {"file": pv_file, "hook": "patient-view", "service": "mm-next-line", "description": v.description}
        exp.update(v.expect)
        expected[v.key] = exp
        for o in v.orders:
            fname = f"{v.key}.{o['name']}.{o['hook']}.json"
            req = v.request(o["hook"], o["name"], o["context"])
            _dump(FIXTURES / fname, req)
            oexp = {"file": fname, "hook": o["hook"],
                    "service": "mm-order-check" if o["hook"] == "order-select" else "mm-order-sign",
                    "description": o["description"], "patient": v.key}
            oexp.update(o["expect"])
            expected[f"{v.key}.{o['name']}"] = oexp
        for var in v.variants:
            vexp = {"file": pv_file, "hook": "patient-view", "service": "mm-next-line", "patient": v.key,
                    "description": f"{v.description} Variant: {var['name']}."}
            vexp.update({k: val for k, val in var.items() if k != "name"})
            variants[f"{v.key}~{var['name']}"] = vexp
    header = (
        "# Clinical vignettes: expected outcomes. GENERATED by tools/make_vignettes.py - edit there.\n"
        "# Derived from /work/shared/CLINICAL_LOGIC.md and CONTRACT.md (reasons in `why`/`notes`),\n"
        "# independently of the service code. Keys not listed are not asserted (ambiguous logic).\n"
        "# state.transplant.monthsAsctToProgression as [lo, hi] = accepted range.\n"
    )
    doc = {"as_of": AS_OF, "vignettes": expected, "config_variants": variants}
    EXPECTED.write_text(header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110))
    print(f"wrote {len(list(FIXTURES.glob('*.json')))} fixtures and {len(expected)} expectations")


if __name__ == "__main__":
    main()
