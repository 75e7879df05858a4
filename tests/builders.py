"""Small FHIR builders for HTTP-level tests (the clinical suites have their own)."""

from __future__ import annotations

import uuid
from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r} for r in resources]}


def patient(pid: str = "p1", birth: str = "1955-03-02") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": "female"}


def myeloma_condition(pid: str = "p1", cid: str = "c1", code: str = "C90.00", onset: str = "2021-01-10") -> dict[str, Any]:
    # ICD-10-CM C90.00, C90.02: CMS ICD-10-CM April 2026 tabular (docs/reference/terminology.md §2a)
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": f"Patient/{pid}"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "active"}]},
            "code": {"coding": [{"system": ICD10CM, "code": code}], "text": "Multiple myeloma"},
            "onsetDateTime": onset}


def med_statement(pid: str, mid: str, rxcui: str, display: str, start: str, end: str | None = None,
                  status: str = "completed", reason: dict[str, Any] | None = None) -> dict[str, Any]:
    period = {"start": start}
    if end:
        period["end"] = end
    res: dict[str, Any] = {"resourceType": "MedicationStatement", "id": mid, "status": status,
                           "subject": {"reference": f"Patient/{pid}"},
                           "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxcui, "display": display}],
                                                         "text": display},
                           "effectivePeriod": period}
    if reason:
        res["statusReason"] = [reason]
    return res


def progression_status(pid: str, oid: str, when: str) -> dict[str, Any]:
    # mCODE CancerDiseaseStatus: LOINC 97509-4, SNOMED 271299001 "Patient's condition worsened"
    return {"resourceType": "Observation", "id": oid, "status": "final", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "97509-4"}]},
            "effectiveDateTime": when,
            "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "271299001",
                                                 "display": "Patient's condition worsened"}]}}


def len_refractory_patient(pid: str = "p1") -> dict[str, dict[str, Any]]:
    """Prefetch for a patient after one line (VRd then lenalidomide maintenance), progressing on it."""
    # RxNorm ingredients: lenalidomide 342369, bortezomib 358258, dexamethasone 3264 (docs/reference/drug_codes.json)
    meds = bundle(
        med_statement(pid, "m1", "358258", "bortezomib", "2021-02-01", "2021-06-30"),
        med_statement(pid, "m2", "342369", "lenalidomide", "2021-02-01", None, status="active"),
        med_statement(pid, "m3", "3264", "dexamethasone", "2021-02-01", "2021-06-30"),
    )
    return {
        "patient": patient(pid),
        "conditions": bundle(myeloma_condition(pid)),
        "observations": bundle(progression_status(pid, "o1", "2026-09-15")),
        "diagnosticReports": bundle(),
        "procedures": bundle(),
        "medicationStatements": meds,
        "medicationRequests": bundle(),
        "medicationAdministrations": bundle(),
    }


def hook_request(hook: str, prefetch: dict[str, Any] | None, pid: str = "p1", **context: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()),
                            "context": {"userId": "Practitioner/example", "patientId": pid, **context}}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body
