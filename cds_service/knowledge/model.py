"""Typed, read-only views of the knowledge files, built once after the schema check.

The JSON Schemas in `schemas/` guarantee the shapes; this module turns the checked data into frozen
dataclasses so the rules read attributes instead of re-checking dictionaries at every request. The
builders assume schema-valid input (the loader validates first) and fail loudly on a dangling
reference between files (a regimen naming an unknown source), which the schemas cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cds_service.config import LABEL_REGIONS

TIERS: tuple[str, ...] = ("preferred", "other", "if-unavailable")
APPROVED = frozenset({"approved"})
NOT_OFFERED = frozenset({"not-approved", "withdrawn", "pending"})


class KnowledgeReferenceError(ValueError):
    """A knowledge file names an id that another file does not define."""


@dataclass(frozen=True)
class Source:
    id: str
    seed: str | None
    citation: str
    url: str | None
    kind: str
    cite: bool = True  # False: provenance only (machine-written summaries), never on a card
    supersedes: str | None = None

    def contract(self) -> dict[str, Any]:
        """The CONTRACT source object {seed, citation, url}."""
        return {"seed": self.seed, "citation": self.citation, "url": self.url}


@dataclass(frozen=True)
class Figure:
    text: str
    seed: str | None
    source: str | None


@dataclass(frozen=True)
class Label:
    """One region's label for a regimen and the conditions under which use is on-label."""

    status: str  # approved | off-label | not-approved | withdrawn | pending
    source: str
    indication: str
    min_prior_lines: int = 0
    exposed_to: tuple[str, ...] = ()
    refractory_to: tuple[str, ...] = ()
    penta_refractory: bool = False


@dataclass(frozen=True)
class Superseded:
    seed: str
    claim: str
    now: str
    source: str


@dataclass(frozen=True)
class TrialPopulation:
    trial: str
    excludes: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Regimen:
    code: str
    name: str
    components: tuple[str, ...]
    classes: tuple[str, ...]
    trial: str
    figures: tuple[Figure, ...]
    grades: dict[str, str]
    sources: tuple[str, ...]
    beyond_seeds: bool = False
    orderable: bool = True
    all_oral: bool = False
    gentle: bool = False
    intensive: bool = False
    after_tcr: bool = False
    hide_off_label: bool = False
    labels: dict[str, Label] = field(default_factory=dict)
    trial_population: TrialPopulation | None = None
    supersedes: tuple[Superseded, ...] = ()

    @property
    def drugs(self) -> frozenset[str]:
        """Components other than steroids."""
        return frozenset(self.components) - STEROIDS


STEROIDS = frozenset({"dexamethasone", "prednisone"})


@dataclass(frozen=True)
class TcrAgent:
    target: str  # BCMA | GPRC5D
    kind: str  # CAR-T | bispecific | ADC


@dataclass(frozen=True)
class Catalog:
    """What the rules read: regimens, sources and the T-cell redirecting agents, typed."""

    regimens: dict[str, Regimen]
    sources: dict[str, Source]
    tcr_agents: dict[str, TcrAgent]
    settings: dict[str, SettingSpec] = field(default_factory=dict)

    def targets(self, regimen: str) -> tuple[str, ...]:
        """The T-cell redirecting / BCMA-directed targets a regimen acts on, in component order."""
        out: list[str] = []
        for agent in self.regimens[regimen].components:
            tcr = self.tcr_agents.get(agent)
            if tcr and tcr.target not in out:
                out.append(tcr.target)
        return tuple(out)

    def tcr_kinds(self, regimen: str) -> frozenset[str]:
        return frozenset(self.tcr_agents[a].kind for a in self.regimens[regimen].components if a in self.tcr_agents)

    def is_t_cell_redirecting(self, regimen: str) -> bool:
        return bool(self.tcr_kinds(regimen) & {"CAR-T", "bispecific"})

    def cited(self, ids: list[str] | tuple[str, ...]) -> list[dict[str, Any]]:
        """CONTRACT source objects for the ids, in order, deduplicated, machine summaries left out."""
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for sid in ids:
            src = self.sources.get(sid)
            if src is None or not src.cite or sid in seen:
                continue
            seen.add(sid)
            out.append(src.contract())
        return out


def _label(raw: dict[str, Any]) -> Label:
    return Label(
        status=raw["status"], source=raw["source"], indication=raw["indication"],
        min_prior_lines=int(raw.get("minPriorLines", 0)), exposed_to=tuple(raw.get("exposedTo", ())),
        refractory_to=tuple(raw.get("refractoryTo", ())), penta_refractory=bool(raw.get("pentaRefractory", False)),
    )


def _regimen(code: str, raw: dict[str, Any]) -> Regimen:
    tp = raw.get("trialPopulation")
    return Regimen(
        code=code, name=raw["name"], components=tuple(raw["components"]), classes=tuple(raw["classes"]),
        trial=raw["trial"],
        figures=tuple(Figure(f["text"], f.get("seed"), f.get("source")) for f in raw["figures"]),
        grades=dict(raw["grades"]), sources=tuple(raw["sources"]),
        beyond_seeds=bool(raw.get("beyondSeeds", False)), orderable=raw.get("orderable", True) is not False,
        all_oral=bool(raw.get("allOral", False)), gentle=bool(raw.get("gentle", False)),
        intensive=bool(raw.get("intensive", False)), after_tcr=bool(raw.get("afterTcr", False)),
        hide_off_label=raw.get("offLabel") == "hide",
        labels={region: _label(lab) for region, lab in (raw.get("labels") or {}).items()},
        trial_population=TrialPopulation(tp["trial"], tuple(tp["excludes"]), tp["source"]) if tp else None,
        supersedes=tuple(Superseded(s["seed"], s["claim"], s["now"], s["source"]) for s in raw.get("supersedes", ())),
    )


def build_catalog(cards: dict[str, Any]) -> Catalog:
    """The typed catalog from schema-valid cards; raises on a reference to an undefined id."""
    sources = {
        sid: Source(sid, s["seed"], s["citation"], s["url"], s["kind"], bool(s.get("cite", True)), s.get("supersedes"))
        for sid, s in (cards.get("sources") or {}).get("sources", {}).items()
    }
    regimens = {code: _regimen(code, raw) for code, raw in (cards.get("regimens") or {}).get("regimens", {}).items()}
    seq = ((cards.get("modifiers") or {}).get("modifiers") or {}).get("sequencing") or {}
    tcr_agents = {a: TcrAgent(v["target"], v["kind"]) for a, v in (seq.get("agents") or {}).items()}
    missing: list[str] = []
    for reg in regimens.values():
        ids = list(reg.sources) + [f.source for f in reg.figures if f.source]
        ids += [lab.source for lab in reg.labels.values()] + [s.source for s in reg.supersedes]
        if reg.trial_population:
            ids.append(reg.trial_population.source)
        missing += [f"{reg.code}: {i}" for i in ids if i not in sources]
        if reg.labels and set(reg.labels) != set(LABEL_REGIONS):
            missing.append(f"{reg.code}: labels for {sorted(reg.labels)}, need {list(LABEL_REGIONS)}")
    if missing:
        raise KnowledgeReferenceError("unknown source ids or incomplete labels: " + "; ".join(missing))
    return Catalog(regimens=regimens, sources=sources, tcr_agents=tcr_agents, settings=build_settings(cards, regimens))


@dataclass(frozen=True)
class Entry:
    """One listed option of a setting (or one added by a modifier)."""

    regimen: str
    note: str | None = None
    grade: str | None = None
    sources: tuple[str, ...] = ()
    conflict: str | None = None
    fallback_preferred: bool = False
    pin_first: bool = False
    allow_refractory: tuple[str, ...] = ()
    tier: str | None = None  # for class-rule additions

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Entry:
        return cls(regimen=raw["regimen"], note=raw.get("note"), grade=raw.get("grade"),
                   sources=tuple(raw.get("sources") or ()), conflict=raw.get("conflict"),
                   fallback_preferred=bool(raw.get("fallbackPreferred", False)), pin_first=bool(raw.get("pinFirst", False)),
                   allow_refractory=tuple(raw.get("allowRefractory") or ()), tier=raw.get("tier"))


@dataclass(frozen=True)
class Variant:
    id: str
    note: str | None
    when: dict[str, bool]
    tiers: dict[str, tuple[Entry, ...]]


@dataclass(frozen=True)
class Reorder:
    """A setting's reordering block (anti-CD38 exposed, frail): regimens moved first / demoted."""

    first: tuple[str, ...] = ()
    other_first: tuple[str, ...] = ()
    demote: tuple[str, ...] = ()
    note: str = ""
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class SettingSpec:
    id: str
    title: str
    short: str
    sources: tuple[str, ...]
    min_active_for_preferred: int
    check_avoid: tuple[str, ...]
    variants: tuple[Variant, ...]
    class_rules: dict[str, tuple[str, tuple[Entry, ...]]]  # class -> (note, additions)
    untried_from: tuple[str, ...] = ()
    untried_note: str | None = None
    anti_cd38_exposed: Reorder | None = None
    frail: Reorder | None = None


def _reorder(raw: dict[str, Any] | None) -> Reorder | None:
    if raw is None:
        return None
    return Reorder(first=tuple(raw.get("first") or ()), other_first=tuple(raw.get("otherFirst") or ()),
                   demote=tuple(raw.get("demote") or ()), note=raw.get("note", ""), sources=tuple(raw.get("sources") or ()))


def build_settings(cards: dict[str, Any], regimens: dict[str, Regimen]) -> dict[str, SettingSpec]:
    """Typed setting specs; an entry naming an unknown regimen is a reference error."""
    out: dict[str, SettingSpec] = {}
    unknown: list[str] = []
    for sid, raw in ((cards.get("settings") or {}).get("settings") or {}).items():
        variants = tuple(
            Variant(v["id"], v.get("note"), dict(v.get("when") or {}),
                    {tier: tuple(Entry.of(e) for e in (v.get("tiers") or {}).get(tier) or ()) for tier in TIERS})
            for v in raw["variants"])
        class_rules = {cls: (r.get("note", ""), tuple(Entry.of(e) for e in r.get("add") or ()))
                       for cls, r in (raw.get("classRules") or {}).items()}
        untried = raw.get("untriedFirstRelapse") or {}
        spec = SettingSpec(
            id=sid, title=raw["title"], short=raw.get("short") or raw["title"], sources=tuple(raw["sources"]),
            min_active_for_preferred=int(raw.get("minActiveForPreferred") or 0),
            check_avoid=tuple(raw.get("checkAvoid") or ()), variants=variants, class_rules=class_rules,
            untried_from=tuple(untried.get("from") or ()), untried_note=untried.get("note"),
            anti_cd38_exposed=_reorder(raw.get("antiCd38Exposed")), frail=_reorder(raw.get("frail")))
        names = [e.regimen for v in variants for es in v.tiers.values() for e in es]
        names += [e.regimen for _, es in class_rules.values() for e in es] + list(spec.check_avoid)
        unknown += [f"{sid}: {n}" for n in names if n not in regimens]
        out[sid] = spec
    if unknown:
        raise KnowledgeReferenceError("settings name unknown regimens: " + "; ".join(unknown))
    return out
