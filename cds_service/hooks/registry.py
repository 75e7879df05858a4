"""The three CDS services, their hooks and prefetch templates (CDS Hooks 2.0.1 discovery).

Templates use only `{{context.patientId}}` (a root-level primitive context field) and ask for what
the clinical logic reads, in searches a US Core 6.1/7 server SHALL support
(`us_core_searches.yaml`, pinned by tests/test_us_core_queries.py): Observations by the LOINC
codes of `mappings/observations.yaml` (built at load, so a code added there joins the query),
laboratory DiagnosticReports (narrative FISH) by category, MedicationRequests by
patient + every intent, conditions, procedures and the patient. MedicationStatement and
MedicationAdministration have no US Core profile: they keep the base FHIR patient search.
Why: a bare `Observation?patient=` brings an eight-year chart's every routine lab and vital sign
(tens of thousands of resources) that the logic never reads. docs/integration-queries.md lists
each query and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cds_service.knowledge.loader import Knowledge, default_knowledge

PATIENT = "{{context.patientId}}"

# Code system URLs of the short names in mappings/ (FHIR R4 terminology page: loinc.org, snomed.info/sct).
SYSTEM_URLS = {"loinc": "http://loinc.org", "snomed": "http://snomed.info/sct"}
# US Core DiagnosticReport category LAB (v2-0074): the US Core Laboratory DiagnosticReport profile
# requires it on every laboratory report, a FISH or cytogenetics report included.
LAB_REPORT_CATEGORY = "http://terminology.hl7.org/CodeSystem/v2-0074|LAB"
# FHIR R4 MedicationRequest.intent (request-intent for MedicationRequest): every value, so the
# search returns what `MedicationRequest?patient=` would (US Core SHALL patient+intent, SHALL multipleOr).
MEDICATION_REQUEST_INTENTS = ("proposal", "plan", "order", "original-order", "reflex-order", "filler-order",
                              "instance-order", "option")


def observation_codes(knowledge: Knowledge) -> list[str]:
    """`system|code` tokens of every Observation code the record reads (mappings/observations.yaml)."""
    out: list[str] = []
    for entry in knowledge.mappings.get("observations", {}).get("codes", []):
        url = SYSTEM_URLS.get(str(entry.get("system")))
        token = f"{url}|{entry.get('code')}" if url and entry.get("code") else None
        if token and token not in out:
            out.append(token)
    return out


def prefetch_templates(knowledge: Knowledge) -> dict[str, str]:
    codes = ",".join(observation_codes(knowledge))
    return {
        "patient": f"Patient/{PATIENT}",
        "conditions": f"Condition?patient={PATIENT}",
        "observations": f"Observation?patient={PATIENT}&code={codes}",
        "diagnosticReports": f"DiagnosticReport?patient={PATIENT}&category={LAB_REPORT_CATEGORY}",
        "procedures": f"Procedure?patient={PATIENT}",
        "medicationStatements": f"MedicationStatement?patient={PATIENT}&_include=MedicationStatement:medication",
        "medicationRequests": (f"MedicationRequest?patient={PATIENT}&intent={','.join(MEDICATION_REQUEST_INTENTS)}"
                               "&_include=MedicationRequest:medication"),
        "medicationAdministrations": (
            f"MedicationAdministration?patient={PATIENT}&_include=MedicationAdministration:medication"
        ),
    }


def fallback_queries(knowledge: Knowledge) -> dict[str, list[str]]:
    """Second-round searches for a key whose template the FHIR server refused: a DSTU2 server has
    MedicationOrder instead of MedicationRequest; a server without multipleOr on Observation.code
    (only SHOULD in US Core) gets one patient+code search per code (SHALL)."""
    return {
        "medicationRequests": [f"MedicationOrder?patient={PATIENT}"],
        "observations": [f"Observation?patient={PATIENT}&code={code}" for code in observation_codes(knowledge)],
    }


PREFETCH: dict[str, str] = prefetch_templates(default_knowledge())
FALLBACK_QUERIES: dict[str, list[str]] = fallback_queries(default_knowledge())


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str] = field(default_factory=lambda: dict(PREFETCH))
    usage_requirements: str = ""

    def discovery(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(self.prefetch),
        }
        if self.usage_requirements:
            out["usageRequirements"] = self.usage_requirements
        return out


_USAGE = (
    "Needs read access (prefetch, or the FHIR server with fhirAuthorization or an open server) to "
    "Patient, Condition, Observation, DiagnosticReport, Procedure, MedicationStatement, "
    "MedicationRequest, MedicationAdministration and Medication for the patient in context. "
    "Quiet for patients without multiple myeloma. Decision support only: a hematologist decides."
)

SERVICES: dict[str, Service] = {
    s.id: s
    for s in (
        Service(
            id="mm-next-line",
            hook="patient-view",
            title="Relapsed/refractory myeloma: treatment history and next-line options",
            description=(
                "Summarises the myeloma treatment history (lines, what the disease is refractory to, "
                "cytogenetics, transplant) and lists the next-line options ranked by evidence, with alerts."
            ),
            usage_requirements=_USAGE,
        ),
        Service(
            id="mm-order-check",
            hook="order-select",
            title="Myeloma order check (on selection)",
            description=(
                "Checks the selected draft myeloma orders against the patient's refractoriness, FISH "
                "results and supportive-care needs; suggests safer alternatives."
            ),
            usage_requirements=_USAGE,
        ),
        Service(
            id="mm-order-sign",
            hook="order-sign",
            title="Myeloma order check (at signing)",
            description=(
                "The same checks as mm-order-check on every draft order, at the moment of signing."
            ),
            usage_requirements=_USAGE,
        ),
    )
}


def discovery_document() -> dict[str, Any]:
    return {"services": [s.discovery() for s in SERVICES.values()]}
