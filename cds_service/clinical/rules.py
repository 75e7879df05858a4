"""The knowledge as the rules read it, and the plain-data results of the options decision.

`Rules` is built once per process from the schema-checked knowledge: the typed catalog
(`Knowledge.catalog`: regimens, sources, T-cell redirecting agents) for the decisions, plus the
validated card files as data for the renderer (texts, setting titles, conflicts, order-check texts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cds_service.knowledge.loader import Knowledge
from cds_service.knowledge.model import Catalog


@dataclass
class Rules:
    """The knowledge files as the rules read them (built once per process via Knowledge.index)."""

    version: str
    catalog: Catalog
    regimens: dict[str, dict[str, Any]]  # validated card data, read by the renderer
    sources: dict[str, dict[str, Any]]
    settings: dict[str, dict[str, Any]]
    modifiers: dict[str, Any]
    conflicts: dict[str, dict[str, Any]]
    notices: dict[str, dict[str, Any]]
    checks: dict[str, Any]
    texts: dict[str, Any]
    agents: dict[str, dict[str, Any]]

    def source_dicts(self, ids: list[str] | tuple[str, ...]) -> list[dict[str, Any]]:
        """CONTRACT `sources` entries ({seed, citation, url}) for source ids, in order, deduplicated;
        machine-written summaries (`cite: false`) are never cited."""
        return self.catalog.cited(ids)


def _agent_catalog(mappings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> {class, ingredient: {code, display, source} | None} from mappings/agents.yaml.

    Accepts `rxnorm` as a list of {code, tty, display, source} (ingredient = tty IN) or as a
    mapping {ingredient: {...}}; a code without a named source is ignored (never guess a code).
    """
    data = mappings.get("agents") or {}
    items = data.get("agents", []) if isinstance(data, dict) else data
    out: dict[str, dict[str, Any]] = {}
    if isinstance(items, dict):
        items = [dict(v, name=k) for k, v in items.items() if isinstance(v, dict)]
    for item in items or []:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        rx = item.get("rxnorm")
        ingredient = None
        if isinstance(rx, dict):
            ingredient = rx.get("ingredient") if isinstance(rx.get("ingredient"), dict) else None
        elif isinstance(rx, list):
            ingredient = next((c for c in rx if isinstance(c, dict) and c.get("tty") == "IN"), None)
        if ingredient and not (ingredient.get("code") and ingredient.get("source")):
            ingredient = None
        out[str(item["name"])] = {"class": item.get("class"), "ingredient": ingredient}
    return out


def build_rules(knowledge: Knowledge) -> Rules:
    cards = knowledge.cards
    mods = cards.get("modifiers") or {}
    return Rules(
        version=knowledge.version,
        catalog=knowledge.catalog,
        regimens=(cards.get("regimens") or {}).get("regimens", {}),
        sources=(cards.get("sources") or {}).get("sources", {}),
        settings=(cards.get("settings") or {}).get("settings", {}),
        modifiers=mods.get("modifiers", {}),
        conflicts=mods.get("conflicts", {}),
        notices=(cards.get("notices") or {}).get("notices", {}),
        checks=cards.get("order_checks") or {},
        texts=(cards.get("texts") or {}),
        agents=_agent_catalog(knowledge.mappings),
    )


def rules_for(knowledge: Knowledge) -> Rules:
    return knowledge.index("clinical-rules", build_rules)


@dataclass
class Option:
    regimen: str
    tier: str
    rank: int
    grade: str | None
    sources: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    beyond_seeds: bool = False
    conflicts: list[str] = field(default_factory=list)
    off_label: str | None = None  # the label region in which this use is off-label

    def to_contract(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "regimen": self.regimen, "tier": self.tier, "rank": self.rank, "grade": self.grade,
            "sources": self.sources,
        }
        if self.beyond_seeds:
            out["beyondSeeds"] = True
        if self.off_label:
            out["offLabel"] = self.off_label
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass
class Avoid:
    regimen: str
    reason: str
    agents: list[str] = field(default_factory=list)
    note: str | None = None

    def to_contract(self) -> dict[str, Any]:
        out: dict[str, Any] = {"regimen": self.regimen, "reason": self.reason}
        if self.agents:
            out["agents"] = list(self.agents)
            if len(self.agents) > 1:
                out["reasons"] = [f"{a}-refractory" for a in self.agents]
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class OptionsDecision:
    setting: str
    title: str
    variant: str | None
    options: list[Option]
    avoid: list[Avoid]
    conflicts: list[str]  # ids of modifiers.yaml `conflicts` to show on the card
    notes: list[str]  # setting-level explanations (modifiers applied, availability, labels)
    effective_refractory: dict[str, str]  # agent -> why it counts as refractory for choosing
    source_ids: list[str] = field(default_factory=list)  # sources of the modifiers applied
    region: str = "US"
    failed_targets: dict[str, str] = field(default_factory=dict)  # target -> the therapy that failed, in words
    # T-cell redirecting options offered (preferred/other), in rank order: "planned" for the alkylator check
    t_cell_redirection: list[str] = field(default_factory=list)
