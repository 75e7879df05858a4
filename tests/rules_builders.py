"""Builders for the rules tests: hand-made ClinicalState / DraftOrder / PatientRecord objects and the
knowledge (the real cards/; the real mappings/ when they load, else a tiny inline agent catalog)."""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path
from typing import Any

from cds_service.clinical.model import (
    CLASS_AGENTS,
    AgentEvidence,
    ClinicalState,
    Cytogenetics,
    TherapyLine,
    TransplantState,
)
from cds_service.config import Settings
from cds_service.knowledge.loader import Knowledge, KnowledgeError, _load_folder, schema_validators
from cds_service.record.model import DraftOrder, MedicationUse, PatientRecord

ROOT = Path(__file__).resolve().parent.parent
TINY_AGENTS = {"version": "test", "agents": [
    {"name": "pomalidomide", "class": "IMiD",
     "rxnorm": [{"code": "1369713", "tty": "IN", "display": "pomalidomide", "source": "drug_codes.json (verified)"}]},
    {"name": "lenalidomide", "class": "IMiD",
     "rxnorm": {"ingredient": {"code": "342369", "display": "lenalidomide", "source": "drug_codes.json (verified)"}}},
    {"name": "bortezomib", "class": "PI", "rxnorm": []},
]}


@functools.lru_cache(maxsize=2)
def knowledge(real_mappings: bool = True) -> Knowledge:
    validators = schema_validators()
    cards = _load_folder(ROOT / "cards", validators)
    mappings: dict[str, Any] = {"agents": TINY_AGENTS}
    if real_mappings:
        try:
            mappings = _load_folder(ROOT / "mappings", validators)
        except KnowledgeError:
            mappings = {"agents": TINY_AGENTS}
    return Knowledge(version=str(cards["knowledge"]["knowledgeVersion"]), mappings=mappings, cards=cards,
                     digest="test")


def settings(**kw: Any) -> Settings:
    return Settings(**kw)


def ev(agent: str, status: str = "exposed", lines: tuple[int, ...] = (1,), progression: date | None = None,
       reason: str = "") -> AgentEvidence:
    return AgentEvidence(agent=agent, status=status, lines=list(lines), first_dose=date(2021, 1, 1),
                         last_dose=date(2023, 1, 1), ongoing=False, progression_date=progression,
                         reason=reason or f"{agent} {status}")


def line(n: int, agents: list[str], **kw: Any) -> TherapyLine:
    return TherapyLine(number=n, start=date(2020 + n, 1, 1), end=date(2021 + n, 1, 1), agents=agents,
                       label=" + ".join(agents), **kw)


def state(
    *,
    lines: int | list[list[str]] = 1,
    refractory: tuple[str, ...] = (),
    exposed: tuple[str, ...] = (),
    relapsed: bool = True,
    **kw: Any,
) -> ClinicalState:
    """A myeloma patient state; class states and TCR/double flags derived from the agent evidence."""
    line_agents = [["bortezomib", "lenalidomide", "dexamethasone"]] * lines if isinstance(lines, int) else lines
    tl = [line(i + 1, a, ended_by="progression" if relapsed else "ongoing") for i, a in enumerate(line_agents)]
    prog = date(2024, 3, 1)
    agents = {a: ev(a, "exposed") for a in exposed}
    agents.update({a: ev(a, "refractory", lines=(len(tl) or 1,), progression=prog,
                         reason=f"progressed on {a} (line {len(tl) or 1})") for a in refractory})
    classes = {}
    for cls, members in CLASS_AGENTS.items():
        sts = [agents[m].status for m in members if m in agents]
        classes[cls] = "refractory" if "refractory" in sts else ("exposed" if sts else "naive")
    s = ClinicalState(multiple_myeloma=True, lines=tl, agents=agents, classes=classes, relapsed=relapsed,
                      last_progression=prog if relapsed else None, as_of=date(2024, 4, 1))
    s.double_refractory = classes["IMiD"] == "refractory" and classes["PI"] == "refractory"
    s.triple_class_refractory = s.double_refractory and classes["anti-CD38"] == "refractory"
    s.triple_class_exposed = all(v != "naive" for v in classes.values())
    s.cytogenetics = kw.pop("cytogenetics", Cytogenetics())
    s.transplant = kw.pop("transplant", TransplantState())
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def draft(ref: str, agents: list[str], *, selected: bool = True, route: str | None = None,
          category: str | None = None, high_dose_steroid: bool = False, is_fish_panel: bool = False,
          display: str | None = None, resource: dict | None = None) -> DraftOrder:
    rt = ref.split("/")[0]
    res = resource if resource is not None else {
        "resourceType": rt, "id": ref.split("/")[-1], "status": "draft", "intent": "order",
        "subject": {"reference": "Patient/p1"},
        **({"medicationCodeableConcept": {"text": display or " + ".join(agents)}} if rt == "MedicationRequest" else {}),
    }
    return DraftOrder(ref=ref, resource_type=rt, display=display or " + ".join(agents) or ref, agents=agents,
                      category=category, route=route, selected=selected, is_fish_panel=is_fish_panel,
                      high_dose_steroid=high_dose_steroid, resource=res)


def record(*meds: MedicationUse, patient_id: str = "p1") -> PatientRecord:
    return PatientRecord(patient_id=patient_id, medications=list(meds))


def supportive(category: str, *, ongoing: bool = True, status: str = "active") -> MedicationUse:
    return MedicationUse(source=f"MedicationStatement/{category}", kind="statement", display=category,
                         category=category, status=status, ongoing=ongoing)
