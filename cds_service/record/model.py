"""The normalised patient record: what the clinical core reads instead of raw FHIR.

Plain, frozen-ish dataclasses so the clinical core is pure and testable without FHIR.
Every item keeps `source` (a "ResourceType/id" reference) so cards can cite the chart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

StopReason = Literal["progression", "toxicity", "completed", "other", "unknown"]
MedKind = Literal["statement", "request", "administration", "draft"]


@dataclass
class MedicationUse:
    """One medication record of the chart (statement, request/cycle or single administration).

    `agent` is the vocabulary name from CONTRACT (e.g. "daratumumab") when the drug is an
    anti-myeloma agent or steroid of the catalog; `category` tags supportive drugs
    ("antithrombotic", "zoster-prophylaxis", "antiemetic", "pjp-prophylaxis") so the order
    checks can see them. Both are None for unrelated drugs (they are still kept for counts).
    """

    source: str
    kind: MedKind
    display: str
    agent: str | None = None
    category: str | None = None
    status: str | None = None
    start: date | None = None
    end: date | None = None
    ongoing: bool = False
    stop_reason: StopReason = "unknown"
    stop_reason_text: str | None = None
    route: str | None = None  # "iv" | "sc" | "oral" | None
    high_dose_steroid: bool = False
    # the one date a record without a usable start carries (MedicationStatement.dateAsserted):
    # it places the record in a line but never opens one (clinical/courses.py, lines.py)
    asserted: date | None = None


@dataclass
class ProgressionEvent:
    """Evidence that the disease progressed on a date."""

    date: date
    source: str
    kind: str  # "disease-status" | "condition-relapse" | "medication-status-reason" | "m-protein" | "response-pd"
    detail: str = ""


@dataclass
class LabValue:
    date: date
    value: float
    unit: str
    source: str
    code: str = ""


@dataclass
class CytoFinding:
    """One FISH/cytogenetic result; `present` False is a documented negative."""

    abnormality: str  # CONTRACT vocabulary: del(17p), t(4;14), t(14;16), t(14;20), t(11;14), 1q-gain, del(1p); or TP53-mutation
    present: bool
    date: date | None
    source: str
    clonal_fraction: float | None = None
    # a deletion reported mono- or biallelic ("mono" | "bi"), where the lab says so (del(1p32) by IMS/IMWG 2025)
    allelic: str | None = None


@dataclass
class TransplantEvent:
    date: date | None
    kind: Literal["autologous", "allogeneic", "unknown"]
    source: str


@dataclass
class ConditionFact:
    """A condition relevant to myeloma (diagnosis, relapse, PCL, extramedullary, neuropathy...)."""

    kind: str  # "multiple-myeloma" | "plasma-cell-leukemia" | "extramedullary" | "neuropathy" | "frailty" | "smoldering" | "mgus"
    source: str
    onset: date | None = None
    relapse: bool = False
    remission: bool = False
    active: bool = True
    code: str = ""
    recorded: date | None = None  # Condition.recordedDate: dates a re-coded "in relapse" entry whose onset is the diagnosis


@dataclass
class PatientRecord:
    """Everything the rules need, read tolerantly from whatever the EHR sent."""

    patient_id: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    conditions: list[ConditionFact] = field(default_factory=list)
    medications: list[MedicationUse] = field(default_factory=list)
    progressions: list[ProgressionEvent] = field(default_factory=list)
    m_protein: list[LabValue] = field(default_factory=list)
    ecog: list[LabValue] = field(default_factory=list)
    # serum free light chains in mg/L, code "36916-5" / "kappa" or "33944-0" / "lambda": IMWG FLC progression
    flc: list[LabValue] = field(default_factory=list)
    # IMS/IMWG 2025 high risk: beta-2-microglobulin (mg/L) with serum creatinine (mg/dL)
    b2m: list[LabValue] = field(default_factory=list)
    creatinine: list[LabValue] = field(default_factory=list)
    # urine M-protein in mg/24 h: IMWG urine progression
    urine_m_protein: list[LabValue] = field(default_factory=list)
    cytogenetics: list[CytoFinding] = field(default_factory=list)
    transplants: list[TransplantEvent] = field(default_factory=list)
    # T-cell collections (apheresis) for a CAR-T: therapy between one and the infusion is bridging
    car_t_collections: list[date] = field(default_factory=list)
    resource_count: int = 0
    notes: list[str] = field(default_factory=list)  # data problems worth showing (unreadable resources...)

    @property
    def has_myeloma(self) -> bool:
        return any(
            c.kind in ("multiple-myeloma", "plasma-cell-leukemia", "extramedullary") for c in self.conditions
        )


@dataclass
class DraftOrder:
    """A draft order from `context.draftOrders`, read tolerantly (DSTU2 MedicationOrder too)."""

    ref: str  # "MedicationRequest/123"
    resource_type: str
    display: str
    agents: list[str] = field(default_factory=list)
    category: str | None = None
    route: str | None = None
    selected: bool = True
    is_fish_panel: bool = False
    high_dose_steroid: bool = False
    resource: dict = field(default_factory=dict)
