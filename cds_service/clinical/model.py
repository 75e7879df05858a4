"""The derived clinical state: what the rules decide on, with the evidence kept for the cards.

`ClinicalState.to_contract()` produces exactly the `state` object of CONTRACT.md
(card extension, kind "state"); everything else here is extra explanation for the cards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from cds_service.record.model import ProgressionEvent

AgentStatus = Literal["exposed", "refractory"]
ClassStatus = Literal["naive", "exposed", "refractory"]

CLASS_AGENTS: dict[str, tuple[str, ...]] = {
    "IMiD": ("lenalidomide", "pomalidomide", "thalidomide"),
    "PI": ("bortezomib", "carfilzomib", "ixazomib"),
    "anti-CD38": ("daratumumab", "isatuximab"),
}


@dataclass
class TherapyLine:
    """One IMWG line of therapy (induction + ASCT + maintenance count as one)."""

    number: int
    start: date | None
    end: date | None
    agents: list[str]
    label: str  # readable regimen, e.g. "daratumumab + lenalidomide + dexamethasone"
    ongoing: bool = False
    includes_asct: bool = False
    asct_date: date | None = None
    maintenance_agents: list[str] = field(default_factory=list)
    ended_by: str = "unknown"  # "progression" | "toxicity" | "completed" | "ongoing" | "unknown"
    progression_date: date | None = None
    sources: list[str] = field(default_factory=list)


@dataclass
class AgentEvidence:
    """Why an agent is exposed or refractory: the line, the dates and the chart references."""

    agent: str
    status: AgentStatus
    lines: list[int]
    first_dose: date | None
    last_dose: date | None
    ongoing: bool
    progression_date: date | None
    reason: str  # one sentence a clinician can check against the chart
    sources: list[str] = field(default_factory=list)


TargetStatus = Literal["naive", "exposed", "refractory"]
TARGETS: tuple[str, ...] = ("BCMA", "GPRC5D")

# T-cell redirecting and BCMA-directed agents: (kind, target), CLINICAL_LOGIC §5 (classes as in
# mappings/agents.yaml: BCMA-CAR-T, BCMA-bispecific, GPRC5D-bispecific, BCMA-ADC). The two
# "-unspecified" names are CAR-T infusions whose product the record does not name
# (record/normalise.py); they are not CONTRACT agents and stay out of `state.agents`.
CAR_T_BCMA_UNSPECIFIED = "bcma-car-t-unspecified"
CAR_T_UNSPECIFIED = "car-t-unspecified"
TCR_AGENTS: dict[str, tuple[Literal["CAR-T", "bispecific", "ADC"], str | None]] = {
    "idecabtagene-vicleucel": ("CAR-T", "BCMA"),
    "ciltacabtagene-autoleucel": ("CAR-T", "BCMA"),
    CAR_T_BCMA_UNSPECIFIED: ("CAR-T", "BCMA"),
    CAR_T_UNSPECIFIED: ("CAR-T", None),
    "teclistamab": ("bispecific", "BCMA"),
    "elranatamab": ("bispecific", "BCMA"),
    "linvoseltamab": ("bispecific", "BCMA"),
    "talquetamab": ("bispecific", "GPRC5D"),
    "belantamab-mafodotin": ("ADC", "BCMA"),
}
CAR_T_AGENTS = frozenset(a for a, (kind, _t) in TCR_AGENTS.items() if kind == "CAR-T")
UNSPECIFIED_AGENTS = frozenset({CAR_T_BCMA_UNSPECIFIED, CAR_T_UNSPECIFIED})


@dataclass
class TcrTherapy:
    """One T-cell redirecting or BCMA-directed therapy (CAR-T, bispecific, ADC) and how it ended.

    A CAR-T infusion is one-time: any progression after it is failure of that product and its
    target (`outcome` "refractory"). Bispecifics and ADCs follow the 60-day rule like any drug.
    """

    agent: str  # CONTRACT agent name, e.g. "ciltacabtagene-autoleucel" (or an unnamed CAR-T)
    kind: Literal["CAR-T", "bispecific", "ADC"]
    target: str  # "BCMA" | "GPRC5D" | "unknown" (a CAR-T whose product is not recorded)
    start: date | None
    end: date | None  # infusion date for CAR-T; last dose for the others
    line: int | None
    outcome: Literal["refractory", "exposed", "ongoing"]
    progression_date: date | None = None
    sources: list[str] = field(default_factory=list)


@dataclass
class Cytogenetics:
    tested: bool = False
    high_risk: bool | None = None
    findings: list[str] = field(default_factory=list)  # positive findings, CONTRACT vocabulary
    negatives: list[str] = field(default_factory=list)  # documented absent
    t11_14: bool | None = None
    sources: list[str] = field(default_factory=list)
    risk_definition: str = "IMS-IMWG-2025"
    # the findings that met the high-risk definition, in words for the card (e.g. "del(17p) in 45 %")
    high_risk_reasons: list[str] = field(default_factory=list)
    del17p_fraction: float | None = None  # % of clonal plasma cells, where the result reports it
    tp53_mutation: bool | None = None
    # what the definition could not use or did not count, in words for the card ("t(4;14) without
    # 1q gain or del(1p32): not high risk", "del(17p) clone size not reported")
    risk_notes: list[str] = field(default_factory=list)
    last_tested: date | None = None  # date of the latest FISH result (restaging at relapse)

    def to_contract(self) -> dict[str, Any]:
        return {"tested": self.tested, "highRisk": self.high_risk, "findings": list(self.findings),
                "t11_14": self.t11_14, "riskDefinition": self.risk_definition}


@dataclass
class TransplantState:
    prior_asct: bool = False
    asct_date: date | None = None
    months_asct_to_progression: int | None = None
    maintenance_after_asct: bool | None = None
    salvage_asct: Literal["candidate", "discuss", "not-recommended"] | None = None
    transplant_eligible: bool | None = None  # for a first ASCT in a never-transplanted patient
    sources: list[str] = field(default_factory=list)
    # why salvage_asct has its value (both thresholds, seeds 002/003), for the state card
    salvage_reason: str = ""
    threshold_003_months: int | None = None  # 36, or 24 without maintenance (003 [2A])
    # a short why when fitness or the point of the disease course overrides the remission verdict
    # ("ECOG 3", "age 83", "relapse after 4 lines"), for the notice summary
    salvage_why: str = ""

    def to_contract(self) -> dict[str, Any]:
        return {
            "priorASCT": self.prior_asct,
            "monthsAsctToProgression": self.months_asct_to_progression,
            "salvageASCT": self.salvage_asct,
        }


@dataclass
class ClinicalState:
    multiple_myeloma: bool
    lines: list[TherapyLine] = field(default_factory=list)
    agents: dict[str, AgentEvidence] = field(default_factory=dict)
    classes: dict[str, ClassStatus] = field(default_factory=lambda: {k: "naive" for k in CLASS_AGENTS})
    double_refractory: bool = False
    triple_class_exposed: bool = False
    triple_class_refractory: bool = False
    penta_refractory: bool = False
    progressed_on_len_maintenance: bool | None = None
    # lenalidomide stopped 60 days–6 months before progression: exposed by IMWG, but treat as
    # refractory when choosing (seed 003); the rules read this flag and say why.
    len_recent_exposure: bool = False
    relapsed: bool = False  # progression after at least one line
    on_first_line: bool = False
    last_progression: date | None = None
    last_response_months: float | None = None
    short_response: bool | None = None
    frontline_anti_cd38: Literal["with-lenalidomide", "with-bortezomib-alkylator", "other"] | None = None
    cytogenetics: Cytogenetics = field(default_factory=Cytogenetics)
    transplant: TransplantState = field(default_factory=TransplantState)
    age: int | None = None
    ecog: int | None = None
    frail: bool | None = None
    over_75: bool | None = None
    plasma_cell_leukemia: bool = False
    extramedullary: bool = False
    neuropathy: bool = False
    insufficient_data: bool = False
    missing: list[str] = field(default_factory=list)  # what data was missing, for the cards
    # why IMWG FLC progression cannot be judged ("λ missing"), "" when it can: one-line summaries say so
    flc_unjudged: str = ""
    as_of: date | None = None
    # progression episodes (date, kind, source, detail) that the derivation used, for the cards
    progression_events: list[ProgressionEvent] = field(default_factory=list)
    # CLINICAL_LOGIC §5: target states and T-cell redirecting history
    targets: dict[str, TargetStatus] = field(default_factory=lambda: {t: "naive" for t in TARGETS})
    tcr_history: list[TcrTherapy] = field(default_factory=list)
    # the current line is still running without progression: on therapy, not awaiting a next line
    on_therapy: bool = False
    current_line: int | None = None  # number of the running line, when on_therapy
    line_count_uncertain: bool = False  # records without a usable start date could not be placed
    # the last line is finished (completed course, CAR-T given) and no progression came since it
    # started: remission, not a relapse awaiting a next line (setting `not-relapsed`)
    off_therapy_no_progression: bool = False
    undated_records: list[str] = field(default_factory=list)  # "agent (chart ref)" not placed in any line

    @property
    def prior_lines(self) -> int:
        return len(self.lines)

    def agent_status(self, agent: str) -> AgentStatus | None:
        ev = self.agents.get(agent)
        return ev.status if ev else None

    def is_refractory(self, agent: str) -> bool:
        return self.agent_status(agent) == "refractory"

    def to_contract(self) -> dict[str, Any]:
        return {
            "multipleMyeloma": self.multiple_myeloma,
            "priorLines": self.prior_lines,
            "agents": {a: ev.status for a, ev in sorted(self.agents.items()) if a not in UNSPECIFIED_AGENTS},
            "classes": dict(self.classes),
            "doubleRefractory": self.double_refractory,
            "tripleClassExposed": self.triple_class_exposed,
            "tripleClassRefractory": self.triple_class_refractory,
            "pentaRefractory": self.penta_refractory,
            "progressedOnLenalidomideMaintenance": self.progressed_on_len_maintenance,
            "cytogenetics": self.cytogenetics.to_contract(),
            "transplant": self.transplant.to_contract(),
            "frail": self.frail,
            "plasmaCellLeukemia": self.plasma_cell_leukemia,
            "extramedullary": self.extramedullary,
            "targets": dict(self.targets),
            "onTherapy": self.on_therapy,
        }
