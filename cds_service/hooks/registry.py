"""The three CDS services, their hooks and prefetch templates (CDS Hooks 2.0.1 discovery).

Templates use only `{{context.patientId}}` (a root-level primitive context field) and plain FHIR
searches, so any EHR can fill them in one round: every medication kind (with the referenced
Medication resources included), conditions, observations (disease status, M-protein, FISH,
ECOG), diagnostic reports (narrative FISH), procedures (transplants) and the patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PATIENT = "{{context.patientId}}"

PREFETCH: dict[str, str] = {
    "patient": f"Patient/{PATIENT}",
    "conditions": f"Condition?patient={PATIENT}",
    "observations": f"Observation?patient={PATIENT}",
    "diagnosticReports": f"DiagnosticReport?patient={PATIENT}",
    "procedures": f"Procedure?patient={PATIENT}",
    "medicationStatements": f"MedicationStatement?patient={PATIENT}&_include=MedicationStatement:medication",
    "medicationRequests": f"MedicationRequest?patient={PATIENT}&_include=MedicationRequest:medication",
    "medicationAdministrations": (
        f"MedicationAdministration?patient={PATIENT}&_include=MedicationAdministration:medication"
    ),
}


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
