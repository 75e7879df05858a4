"""Regulatory labels per region and trial populations: may a regimen be offered, and how.

Labels are data (cards/regimens.yaml `labels`, per LABEL_REGION). A regimen without label data is
standard practice everywhere. A label that fits → on-label; an approved product outside its label's
conditions (too few prior lines, a required exposure or refractoriness missing) → off-label, shown
only under `other` and marked; a product never approved, pending or withdrawn in the region → not
offered. A trial's excluded groups never receive its evidence (e.g. MajesTEC-3 excluded
anti-CD38-refractory and BCMA-exposed patients).
"""

from __future__ import annotations

from dataclasses import dataclass

from cds_service.clinical.model import CLASS_AGENTS, ClinicalState
from cds_service.clinical.setting import anti_cd38_refractory, class_refractory, len_refractory_like
from cds_service.knowledge.model import NOT_OFFERED, Catalog, Label, Regimen


@dataclass(frozen=True)
class LabelVerdict:
    status: str  # "on-label" | "off-label" | "not-offered"
    label: Label | None = None
    why: str = ""  # the unmet conditions, in words


def _exposed(state: ClinicalState, item: str) -> bool:
    if item in CLASS_AGENTS:
        return state.classes.get(item, "naive") != "naive" or any(a in state.agents for a in CLASS_AGENTS[item])
    return item in state.agents


def _refractory(state: ClinicalState, item: str) -> bool:
    if item == "lenalidomide":
        return len_refractory_like(state)
    if item in CLASS_AGENTS:
        return class_refractory(state, item)
    return state.is_refractory(item)


def label_verdict(reg: Regimen, state: ClinicalState, region: str) -> LabelVerdict:
    """Whether the regimen's use in this patient is on-label in the region, and why not."""
    lab = reg.labels.get(region)
    if lab is None:
        return LabelVerdict("on-label")
    if lab.status in NOT_OFFERED:
        return LabelVerdict("not-offered", lab, lab.indication)
    if lab.status == "off-label":
        return LabelVerdict("off-label", lab, "no myeloma indication")
    why: list[str] = []
    if state.prior_lines < lab.min_prior_lines:
        why.append(f"{state.prior_lines} prior line{'s' if state.prior_lines != 1 else ''}, label from {lab.min_prior_lines}")
    missing = [x for x in lab.exposed_to if not _exposed(state, x)]
    if missing:
        why.append("no prior " + ", ".join(missing))
    why += [f"not {x}-refractory" for x in lab.refractory_to if not _refractory(state, x)]
    if lab.penta_refractory and not state.penta_refractory:
        why.append("not penta-refractory")
    return LabelVerdict("off-label", lab, "; ".join(why)) if why else LabelVerdict("on-label", lab)


def bcma_exposed(state: ClinicalState, catalog: Catalog) -> bool:
    """Any prior BCMA-directed therapy (CAR-T, bispecific, ADC), from the target state or the agents."""
    if state.targets.get("BCMA", "naive") != "naive" or any(t.target == "BCMA" for t in state.tcr_history):
        return True
    return any(a in state.agents for a, t in catalog.tcr_agents.items() if t.target == "BCMA")


EXCLUSION_WORDS = {
    "anti-CD38-refractory": "anti-CD38-refractory",
    "daratumumab-refractory": "daratumumab-refractory",
    "bortezomib-refractory": "bortezomib-refractory",
    "BCMA-exposed": "BCMA-exposed",
}


def trial_exclusion(reg: Regimen, state: ClinicalState, catalog: Catalog) -> str | None:
    """The excluded group of the regimen's trial this patient belongs to, or None."""
    tp = reg.trial_population
    if tp is None:
        return None
    for group in tp.excludes:
        hit = {
            "anti-CD38-refractory": anti_cd38_refractory(state),
            "daratumumab-refractory": state.is_refractory("daratumumab"),
            "bortezomib-refractory": state.is_refractory("bortezomib"),
            "BCMA-exposed": bcma_exposed(state, catalog),
        }.get(group, False)
        if hit:
            return EXCLUSION_WORDS.get(group, group)
    return None
