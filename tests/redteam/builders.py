"""Red-team patient builders: FHIR R4 dicts written the way *other* EHRs encode them.

Why a separate builder set: the vignettes (tools/make_vignettes.py) were written by one author in one
style; these builders deliberately use other shapes (Epic-like per-order MedicationRequests with
boundsDuration / validityPeriod / statusReason text, Cerner-like MedicationAdministrations with
medicationReference to product-coded Medications, oncology-EHR regimen orders, partial dates, ...).

Every code used here is named with its source (house rule: never invent clinical identifiers):
- RxNorm ingredient codes: docs/reference/drug_codes.json (terminology.md §1).
- RxNorm product (SCD/SBD) codes: docs/reference/cibmtr_rxnorm_valuesets.fsh.
- ICD-10-CM / SNOMED / LOINC: docs/reference/terminology.md §2-§3.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"

# RxNorm ingredient codes, drug_codes.json (verified entries only)
RX_IN = {
    "lenalidomide": "342369", "pomalidomide": "1369713", "thalidomide": "10432", "bortezomib": "358258",
    "carfilzomib": "1302966", "daratumumab": "1721947", "elotuzumab": "1726104", "venetoclax": "1747556",
    "melphalan": "6718", "cyclophosphamide": "3002", "dexamethasone": "3264", "prednisone": "8640",
    "doxorubicin": "3639", "cisplatin": "2555", "etoposide": "4179", "bendamustine": "134547",
    "ixazomib": "1723735", "talquetamab": "2644447",
}
# RxNorm product codes, cibmtr_rxnorm_valuesets.fsh (code -> display as written there)
RX_PRODUCT = {
    "1429367": "lenalidomide 20 MG Oral Capsule [Revlimid]",
    "1428947": "lenalidomide 20 MG Oral Capsule",
    "1242233": "lenalidomide 2.5 MG Oral Capsule [Revlimid]",
    "602910": "lenalidomide 10 MG Oral Capsule",
    "1804997": "bortezomib Injection [Velcade]",
    "1804994": "bortezomib Injection",
    "1806937": "carfilzomib 30 MG Injection [Kyprolis]",
    "1806942": "carfilzomib 60 MG Injection [Kyprolis]",
    "1721954": "daratumumab Injection [Darzalex]",
    "2375141": "15 ML daratumumab-fihj 120 MG/ML / hyaluronidase-fihj 2000 UNT/ML Injection [Darzalex Faspro]",
    "2375139": "daratumumab / hyaluronidase Injection [Darzalex Faspro]",
    "1734919": "cyclophosphamide 1000 MG Injection",
    "2372199": "daratumumab / hyaluronidase",
}
# ATC, drug_codes.json (atc / atc_previous)
ATC_CODES = {"daratumumab-old": "L01XC24", "daratumumab": "L01FC01", "isatuximab": "L01FC02",
             "isatuximab-old": "L01XC38", "pomalidomide": "L04AX06", "carfilzomib": "L01XG02",
             "selinexor": "L01XX66", "teclistamab": "L01FX24", "belantamab": "L01FX15",
             "ciltacabtagene": "L01XL05", "idecabtagene": "L01XL07"}

_ids = itertools.count(1)


def _nid(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def rx(agent_or_code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    """CodeableConcept with an RxNorm ingredient (by agent name) or product code (by code)."""
    if agent_or_code in RX_IN:
        code, disp = RX_IN[agent_or_code], display or agent_or_code
    else:
        code, disp = agent_or_code, display or RX_PRODUCT[agent_or_code]
    cc: dict[str, Any] = {"coding": [{"system": RXNORM, "code": code, "display": disp}]}
    if text:
        cc["text"] = text
    return cc


def text_cc(text: str) -> dict[str, Any]:
    return {"text": text}


def atc_cc(key: str, text: str | None = None) -> dict[str, Any]:
    cc: dict[str, Any] = {"coding": [{"system": ATC, "code": ATC_CODES[key]}]}
    if text:
        cc["text"] = text
    return cc


def local_cc(code: str, display: str) -> dict[str, Any]:
    """A local formulary code (no standard system) that carries only a display."""
    return {"coding": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.698288", "code": code, "display": display}]}


class Patient:
    """Accumulates one patient's resources."""

    def __init__(self, pid: str, birth: str = "1958-03-14", gender: str = "female") -> None:
        self.pid = pid
        self.resources: list[dict[str, Any]] = [
            {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": birth,
             "name": [{"family": "Redteam", "given": [pid]}]}]
        self.included: list[dict[str, Any]] = []  # Medications only reachable via _include / read

    # ------------------------------------------------------------------------ helpers
    @property
    def subj(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.pid}"}

    def add(self, res: dict[str, Any]) -> dict[str, Any]:
        res.setdefault("id", _nid(f"{self.pid}-{res['resourceType'][:4].lower()}"))
        if res["resourceType"] != "Medication":
            res.setdefault("subject", self.subj)
            self.resources.append(res)
        else:
            self.included.append(res)
        return res

    # ---------------------------------------------------------------------- conditions
    def condition(self, code: str, system: str = ICD10, display: str | None = None, onset: str | None = None,
                  recorded: str | None = None, status: str | None = "active", abatement: str | None = None,
                  text: str | None = None, extra_codings: list[dict[str, Any]] | None = None,
                  verification: str | None = "confirmed") -> dict[str, Any]:
        res: dict[str, Any] = {"resourceType": "Condition",
                               "code": {"coding": [{"system": system, "code": code, "display": display or code}]}}
        if extra_codings:
            res["code"]["coding"] += extra_codings
        if text:
            res["code"]["text"] = text
        if status:
            res["clinicalStatus"] = {"coding": [{"system": COND_CLINICAL, "code": status}]}
        if verification:
            res["verificationStatus"] = {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": verification}]}
        if onset:
            res["onsetDateTime"] = onset
        if recorded:
            res["recordedDate"] = recorded
        if abatement:
            res["abatementDateTime"] = abatement
        return self.add(res)

    def myeloma(self, onset: str = "2019-02-01", **kw: Any) -> dict[str, Any]:
        # ICD-10-CM C90.00, terminology.md §2a (verified)
        return self.condition("C90.00", display="Multiple myeloma not having achieved remission", onset=onset, **kw)

    # ----------------------------------------------------------------------- medicines
    def statement(self, med: dict[str, Any], start: str | None, end: str | None = None, status: str = "completed",
                  reason_text: str | None = None, reason_code: tuple[str, str] | None = None,
                  **extra: Any) -> dict[str, Any]:
        res: dict[str, Any] = {"resourceType": "MedicationStatement", "status": status, **self._med(med)}
        if start or end:
            res["effectivePeriod"] = {k: v for k, v in (("start", start), ("end", end)) if v}
        if reason_text or reason_code:
            cc: dict[str, Any] = {}
            if reason_code:
                cc["coding"] = [{"system": SNOMED, "code": reason_code[0], "display": reason_code[1]}]
            if reason_text:
                cc["text"] = reason_text
            res["statusReason"] = [cc]
        res.update(extra)
        return self.add(res)

    def request(self, med: dict[str, Any], authored: str | None, status: str = "completed",
                bounds: tuple[str, str | None] | None = None, duration_days: int | None = None,
                validity: tuple[str, str] | None = None, reason_text: str | None = None,
                reason_code: tuple[str, str] | None = None, course: str | None = None,
                category: str | None = None, intent: str = "order", count: int | None = None,
                dosage_text: str | None = None, **extra: Any) -> dict[str, Any]:
        res: dict[str, Any] = {"resourceType": "MedicationRequest", "status": status, "intent": intent,
                               **self._med(med)}
        if authored:
            res["authoredOn"] = authored
        dose: dict[str, Any] = {}
        repeat: dict[str, Any] = {}
        if bounds:
            repeat["boundsPeriod"] = {k: v for k, v in (("start", bounds[0]), ("end", bounds[1])) if v}
        if duration_days:
            repeat["boundsDuration"] = {"value": duration_days, "unit": "d", "system": "http://unitsofmeasure.org",
                                        "code": "d"}
        if count:
            repeat["count"] = count
            repeat.setdefault("frequency", 1)
            repeat.setdefault("period", 1)
            repeat.setdefault("periodUnit", "d")
        if repeat:
            dose["timing"] = {"repeat": repeat}
        if dosage_text:
            dose["text"] = dosage_text
        if dose:
            res["dosageInstruction"] = [dose]
        if validity:
            res["dispenseRequest"] = {"validityPeriod": {"start": validity[0], "end": validity[1]}}
        if reason_text or reason_code:
            cc = {}
            if reason_code:
                cc["coding"] = [{"system": SNOMED, "code": reason_code[0], "display": reason_code[1]}]
            if reason_text:
                cc["text"] = reason_text
            res["statusReason"] = cc
        if course:
            res["courseOfTherapyType"] = {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy", "code": course}]}
        if category:
            res["category"] = [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category", "code": category}]}]
        res.update(extra)
        return self.add(res)

    def administration(self, med: dict[str, Any], when: str | None = None, period: tuple[str, str] | None = None,
                       status: str = "completed", **extra: Any) -> dict[str, Any]:
        res: dict[str, Any] = {"resourceType": "MedicationAdministration", "status": status, **self._med(med)}
        if when:
            res["effectiveDateTime"] = when
        if period:
            res["effectivePeriod"] = {"start": period[0], "end": period[1]}
        res.update(extra)
        return self.add(res)

    def medication(self, code: dict[str, Any] | None = None,
                   ingredients: list[dict[str, Any]] | None = None, mid: str | None = None) -> dict[str, Any]:
        """A Medication resource elsewhere on the server (prefetch: search mode include)."""
        res: dict[str, Any] = {"resourceType": "Medication", "id": mid or _nid(f"{self.pid}-med")}
        if code:
            res["code"] = code
        if ingredients:
            res["ingredient"] = [{"itemCodeableConcept": cc, "isActive": True} for cc in ingredients]
        return self.add(res)

    def _med(self, med: dict[str, Any]) -> dict[str, Any]:
        """med is either a CodeableConcept, or {'ref': Medication} / {'contained': Medication}."""
        if "ref" in med:
            return {"medicationReference": {"reference": f"Medication/{med['ref']['id']}"}}
        if "contained" in med:
            m = copy.deepcopy(med["contained"])
            m["id"] = m.get("id") or "m1"
            return {"contained": [m], "medicationReference": {"reference": f"#{m['id']}"}}
        return {"medicationCodeableConcept": med}

    # -------------------------------------------------------------------- observations
    def observation(self, code: dict[str, Any], when: str, **value: Any) -> dict[str, Any]:
        res: dict[str, Any] = {"resourceType": "Observation", "status": "final", "code": code,
                               "effectiveDateTime": when, **value}
        return self.add(res)

    def disease_status(self, when: str, worsened: bool = True) -> dict[str, Any]:
        # mCODE CancerDiseaseStatus, LOINC 97509-4; values 271299001 / 268910001 (terminology.md §2c)
        val = ("271299001", "Patient's condition worsened") if worsened else ("268910001", "Patient's condition improved")
        return self.observation({"coding": [{"system": LOINC, "code": "97509-4"}]}, when,
                                valueCodeableConcept={"coding": [{"system": SNOMED, "code": val[0],
                                                                  "display": val[1]}]})

    def m_protein(self, when: str, value: float, unit: str = "g/dL") -> dict[str, Any]:
        # LOINC 33358-3 serum M-protein (terminology.md §3 / issue 3)
        return self.observation({"coding": [{"system": LOINC, "code": "33358-3",
                                             "display": "Protein.monoclonal [Mass/volume] in Serum or Plasma by "
                                                        "Electrophoresis"}]}, when,
                                valueQuantity={"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                                               "code": unit})

    def ecog(self, when: str, score: int, style: str = "integer") -> dict[str, Any]:
        # LOINC 89247-1 ECOG performance status (issue 3 / terminology.md)
        code = {"coding": [{"system": LOINC, "code": "89247-1", "display": "ECOG Performance Status score"}]}
        if style == "integer":
            return self.observation(code, when, valueInteger=score)
        if style == "cc-text":
            return self.observation(code, when, valueCodeableConcept={"text": f"ECOG {score}"})
        if style == "loinc-answer":
            # LOINC answer list LL529-9: LA9623-5 = 2? not sourced here -> use text-only coding display
            return self.observation(code, when, valueCodeableConcept={"coding": [{"display": str(score)}],
                                                                       "text": str(score)})
        return self.observation(code, when, valueString=str(score))

    def fish_report(self, when: str, conclusion: str) -> dict[str, Any]:
        res = {"resourceType": "DiagnosticReport", "status": "final",
               "code": {"text": "FISH myeloma panel"}, "effectiveDateTime": when, "conclusion": conclusion}
        return self.add(res)

    def procedure(self, code: str, system: str, when: str, display: str | None = None,
                  text: str | None = None, status: str = "completed") -> dict[str, Any]:
        res: dict[str, Any] = {"resourceType": "Procedure", "status": status,
                               "code": {"coding": [{"system": system, "code": code, "display": display or code}]},
                               "performedDateTime": when}
        if text:
            res["code"]["text"] = text
        return self.add(res)

    def asct(self, when: str) -> dict[str, Any]:
        # SNOMED 58776007 Autologous bone marrow transplant (terminology.md §2b, SYN)
        return self.procedure("58776007", SNOMED, when, "Autologous bone marrow transplant (procedure)")

    # --------------------------------------------------------------------- requests
    def prefetch(self) -> dict[str, Any]:
        keys = {"Condition": "conditions", "Observation": "observations", "DiagnosticReport": "diagnosticReports",
                "Procedure": "procedures", "MedicationStatement": "medicationStatements",
                "MedicationRequest": "medicationRequests", "MedicationAdministration": "medicationAdministrations"}
        out: dict[str, Any] = {"patient": self.resources[0]}
        for key in keys.values():
            out[key] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
        med_by_id = {m["id"]: m for m in self.included}
        for res in self.resources[1:]:
            key = keys[res["resourceType"]]
            out[key]["entry"].append({"fullUrl": f"http://localhost/fhir/{res['resourceType']}/{res['id']}",
                                      "resource": res, "search": {"mode": "match"}})
            ref = (res.get("medicationReference") or {}).get("reference", "")
            mid = ref.split("/")[-1] if ref.startswith("Medication/") else None
            if mid in med_by_id and not any(e["resource"]["id"] == mid for e in out[key]["entry"]):
                out[key]["entry"].append({"fullUrl": f"http://localhost/fhir/Medication/{mid}",
                                          "resource": med_by_id[mid], "search": {"mode": "include"}})
        for b in list(out.values())[1:]:
            b["total"] = sum(1 for e in b["entry"] if e["search"]["mode"] == "match")
        return out

    def all_resources(self) -> list[dict[str, Any]]:
        return [*self.resources, *self.included]

    def cds_request(self, hook: str = "patient-view", drafts: list[dict[str, Any]] | None = None,
                    selections: list[str] | None = None, draft_bundle: dict[str, Any] | None = None) -> dict[str, Any]:
        ctx: dict[str, Any] = {"userId": "Practitioner/redteam-1", "patientId": self.pid}
        if hook != "patient-view":
            ctx["draftOrders"] = draft_bundle or {"resourceType": "Bundle", "type": "collection",
                                                  "entry": [{"resource": d} for d in drafts or []]}
            if hook == "order-select":
                ctx["selections"] = selections if selections is not None else [
                    f"{d['resourceType']}/{d['id']}" for d in drafts or []]
        return {"hookInstance": str(uuid.uuid4()), "hook": hook, "fhirServer": "http://localhost/fhir",
                "context": ctx, "prefetch": self.prefetch()}


def draft(pid: str, did: str, med: dict[str, Any] | None, rtype: str = "MedicationRequest",
          **extra: Any) -> dict[str, Any]:
    """A draft order as an EHR sends it in context.draftOrders."""
    res: dict[str, Any] = {"resourceType": rtype, "id": did, "status": "draft", "intent": "proposal",
                           "subject": {"reference": f"Patient/{pid}"}}
    if med is not None:
        res["medicationCodeableConcept"] = med
    res.update(extra)
    return res
