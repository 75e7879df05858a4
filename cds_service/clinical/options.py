"""Rank the next-line options for a relapsed patient from the knowledge files (cards/*.yaml).

Pure decision code: it reads `cards/settings.yaml`, `regimens.yaml`, `modifiers.yaml` and
`sources.yaml` through one index built once per process, and returns plain data
(`OptionsDecision`); rendering lives in `cds_service/render/`. Whatever the data says, a final guard
keeps every regimen containing an agent the patient is refractory to out of `preferred`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cds_service.clinical.model import CLASS_AGENTS, ClinicalState
from cds_service.clinical.setting import anti_cd38_refractory, class_refractory, decide_setting, len_refractory_like
from cds_service.config import Settings
from cds_service.knowledge.loader import Knowledge

TIERS = ("preferred", "other", "if-unavailable")
STEROIDS = frozenset({"dexamethasone", "prednisone"})
ANTI_CD38 = frozenset(CLASS_AGENTS["anti-CD38"])


@dataclass
class Rules:
    """The knowledge files as the rules read them (built once per process via Knowledge.index)."""

    version: str
    regimens: dict[str, dict[str, Any]]
    sources: dict[str, dict[str, Any]]
    settings: dict[str, dict[str, Any]]
    modifiers: dict[str, Any]
    conflicts: dict[str, dict[str, Any]]
    notices: dict[str, dict[str, Any]]
    checks: dict[str, Any]
    texts: dict[str, Any]
    agents: dict[str, dict[str, Any]]

    def source_dicts(self, ids: list[str]) -> list[dict[str, Any]]:
        """CONTRACT `sources` entries ({seed, citation, url}) for source ids, in order, deduplicated."""
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for sid in ids:
            src = self.sources.get(sid)
            if src is None or sid in seen:
                continue
            seen.add(sid)
            out.append({"seed": src.get("seed"), "citation": src.get("citation", sid), "url": src.get("url")})
        return out


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

    def to_contract(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "regimen": self.regimen, "tier": self.tier, "rank": self.rank, "grade": self.grade,
            "sources": self.sources,
        }
        if self.beyond_seeds:
            out["beyondSeeds"] = True
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
    notes: list[str]  # setting-level explanations (modifiers applied, availability)
    effective_refractory: dict[str, str]  # agent -> why it counts as refractory for choosing
    source_ids: list[str] = field(default_factory=list)  # sources of the modifiers applied


@dataclass
class _Cand:
    regimen: str
    tier: str
    order: float
    entry: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    grade: str | None = None
    grade_note: str | None = None


def effective_refractory(state: ClinicalState, rules: Rules) -> dict[str, str]:
    """Agents treated as refractory when choosing, with the reason code for the avoid list.

    Steroids are left out: the state may call dexamethasone "refractory" (it was in the failing
    line), but every regimen carries a steroid and the seeds never choose by steroid refractoriness.
    """
    out = {a: f"{a}-refractory" for a, ev in state.agents.items() if ev.status == "refractory" and a not in STEROIDS}
    if "lenalidomide" not in out and (state.progressed_on_len_maintenance or state.len_recent_exposure):
        out["lenalidomide"] = rules.modifiers.get("lenalidomideRecentExposure", {}).get("reason", "lenalidomide-refractory")
    return out


def _variant(spec: dict[str, Any], state: ClinicalState) -> dict[str, Any]:
    facts = {"lenRefractory": len_refractory_like(state), "antiCd38Refractory": anti_cd38_refractory(state)}
    variants = spec.get("variants") or [{"id": "default", "tiers": {}}]
    for v in variants:
        when = v.get("when") or {}
        if all(facts.get(k) == val for k, val in when.items()):
            return v
    return variants[-1]


def _components(rules: Rules, regimen: str) -> list[str]:
    return list((rules.regimens.get(regimen) or {}).get("components", []))


def is_frail_or_old(state: ClinicalState, rules: Rules) -> bool:
    """Frail (or ECOG >= 2, CLINICAL_LOGIC §1) or over 75: the same effect on choices (003)."""
    mod = rules.modifiers.get("frailOrOver75", {})
    over = mod.get("ageOver", 75)
    ecog_min = mod.get("ecogAtLeast", 2)
    return bool(state.frail or state.over_75 or (state.age is not None and state.age > over)
                or (state.frail is None and state.ecog is not None and state.ecog >= ecog_min))


def rank_options(state: ClinicalState, knowledge: Knowledge, settings: Settings) -> OptionsDecision:
    """Tiers, ranks, grades and sources of the next-line options, plus the avoid list with reasons."""
    rules = rules_for(knowledge)
    setting = decide_setting(state)
    spec = rules.settings.get(setting) or {}
    variant = _variant(spec, state) if spec else {"id": None, "tiers": {}}
    eff = effective_refractory(state, rules)
    notes: list[str] = []
    conflicts: list[str] = []
    cands: dict[str, _Cand] = {}
    extra_sources: list[str] = []  # sources of the modifiers applied, cited on the card
    counter = [0.0]

    def add(entry: dict[str, Any], tier: str, front: bool = False, grade_setting: str | None = None) -> None:
        reg = entry["regimen"]
        if reg not in rules.regimens:
            return
        counter[0] += 1
        order = -counter[0] if front else counter[0]
        if reg in cands:
            c = cands[reg]
            if TIERS.index(tier) < TIERS.index(c.tier):
                c.tier = tier
            if front:
                c.order = order
            if entry.get("note") and entry["note"] not in c.notes:
                c.notes.append(entry["note"])
            return
        c = _Cand(reg, tier, order, entry)
        if entry.get("note"):
            c.notes.append(entry["note"])
        if entry.get("conflict"):
            c.conflicts.append(entry["conflict"])
        c.grade = entry.get("grade") or (rules.regimens[reg].get("grades") or {}).get(grade_setting or setting)
        if grade_setting and grade_setting != setting and c.grade:
            c.grade_note = f"grade {c.grade} is 003's grade at first relapse ({grade_setting})"
        cands[reg] = c

    if setting in ("not-relapsed", "insufficient-data") or not spec:
        return OptionsDecision(setting, spec.get("title", setting), variant.get("id"), [], [], [], [], eff)

    if variant.get("note"):
        notes.append(variant["note"])
    for tier in TIERS:
        for entry in (variant.get("tiers") or {}).get(tier) or []:
            add(entry, tier)

    # Later relapse: class-specific additions (002) and untried first-relapse options (003).
    for cls, rule in (spec.get("classRules") or {}).items():
        if class_refractory(state, cls):
            notes.append(rule.get("note", ""))
            for entry in rule.get("add") or []:
                add(entry, entry.get("tier", "other"))
    untried = spec.get("untriedFirstRelapse")
    if untried:
        received = set(state.agents)
        for src_setting in untried.get("from") or []:
            src_variant = (rules.settings.get(src_setting) or {}).get("variants", [{}])[0]
            for tier in ("preferred", "other"):
                for entry in (src_variant.get("tiers") or {}).get(tier) or []:
                    comps = set(_components(rules, entry["regimen"])) - STEROIDS
                    if comps and comps <= received:
                        continue  # already tried
                    if entry["regimen"] not in cands:
                        add({"regimen": entry["regimen"], "note": untried.get("note")}, tier, grade_setting=src_setting)

    # Modifiers that add regimens.
    mods = rules.modifiers
    ven = mods.get("venetoclaxT11_14", {})
    if (
        ven and state.cytogenetics.t11_14 is True and len_refractory_like(state)
        and not class_refractory(state, "PI")
    ):
        add({"regimen": ven.get("regimen", "VenVd"), "note": ven.get("note"), "sources": ven.get("sources")},
            ven.get("tier", "other"), front=ven.get("position") == "first")
        notes.append(ven.get("note", ""))
        extra_sources += ven.get("sources") or []
    else:
        cands.pop(ven.get("regimen", "VenVd"), None)  # never suggested otherwise (BELLINI OS HR 3.13)
    aggr = mods.get("aggressiveDisease", {})
    if aggr and (state.plasma_cell_leukemia or state.extramedullary):
        reg = aggr.get("regimen", "VDT-PACE")
        add({"regimen": reg, "note": aggr.get("note"), "sources": aggr.get("sources"),
             "allowRefractory": aggr.get("allowRefractory", [])}, aggr.get("tier", "preferred"), front=True)
        if reg in cands:  # the modifier's allowance wins over a setting list's narrower one
            cands[reg].entry = {**cands[reg].entry, "allowRefractory": sorted(
                set(cands[reg].entry.get("allowRefractory") or []) | set(aggr.get("allowRefractory") or []))}
        notes.append(aggr.get("note", ""))
        extra_sources += aggr.get("sources") or []
    sal = mods.get("salvageAsct", {})
    salvage = salvage_asct_status(state, rules)
    avoid: dict[str, Avoid] = {}
    if salvage in ("candidate", "discuss") and setting != "triple-class-refractory":
        tier = sal.get("candidateTier" if salvage == "candidate" else "discussTier", "other")
        add({"regimen": sal.get("regimen", "salvage-ASCT"), "sources": sal.get("sources"),
             "note": f"Salvage ASCT: {salvage} (see the salvage-ASCT notice)"}, tier)
    elif salvage == "not-recommended" and setting != "triple-class-refractory":
        months = state.transplant.months_asct_to_progression
        if state.transplant.prior_asct and months is not None:
            reason = sal.get("avoidReason", "remission-after-asct-under-18-months")
            note = f"{months} months from ASCT to progression (< {sal.get('seed002MinMonths', 18)}, 002)"
        else:
            reason, note = "not-transplant-eligible", "never transplanted and not transplant-eligible"
        avoid[sal.get("regimen", "salvage-ASCT")] = Avoid(sal.get("regimen", "salvage-ASCT"), reason, note=note)
    if state.transplant.prior_asct and state.transplant.months_asct_to_progression is not None:
        conflicts.append("salvage-asct-thresholds")

    # Anti-CD38 exposed but not refractory; frailty: reorder within data-given lists.
    cd38 = state.classes.get("anti-CD38")
    exposed_block = spec.get("antiCd38Exposed")
    if exposed_block and cd38 == "exposed":
        notes.append(exposed_block.get("note", ""))
        extra_sources += exposed_block.get("sources") or []
        for reg in reversed(exposed_block.get("first") or []):
            if reg in cands:
                add({"regimen": reg}, "preferred", front=True)
        for reg in reversed(exposed_block.get("otherFirst") or []):
            if reg in cands and cands[reg].tier != "preferred":
                add({"regimen": reg}, "other", front=True)
    frail_block = spec.get("frail")
    if frail_block and is_frail_or_old(state, rules):
        notes.append(frail_block.get("note", "") or mods.get("frailOrOver75", {}).get("note", ""))
        extra_sources += mods.get("frailOrOver75", {}).get("sources") or []
        for reg in frail_block.get("demote") or []:
            if reg in cands and cands[reg].tier == "preferred":
                cands[reg].tier = "other"
                cands[reg].notes.append("frail or over 75: not first")
        for reg in reversed(frail_block.get("first") or []):
            if reg in cands:
                add({"regimen": reg}, "preferred", front=True)

    # Refractoriness: avoid, cap, or allow (agent level, never class level, except anti-CD38 cross-resistance).
    cap_cd38 = anti_cd38_refractory(state)
    min_active = int(spec.get("minActiveForPreferred") or 0)
    for reg, c in list(cands.items()):
        comps = _components(rules, reg)
        refr = [a for a in comps if a in eff]
        allowed = set(c.entry.get("allowRefractory") or [])
        blocking = _by_priority([a for a in refr if a not in allowed])
        if blocking:
            note = _len_note(state, mods) if blocking[0] == "lenalidomide" else None
            avoid.setdefault(reg, Avoid(reg, eff[blocking[0]], blocking, note))
            del cands[reg]
            continue
        if refr:
            c.tier = "other" if c.tier == "preferred" else c.tier
            c.notes.append(f"despite {', '.join(refr)}-refractory disease: " + (c.entry.get("note") or "seed allows it"))
        if cap_cd38 and any(a in ANTI_CD38 for a in comps):
            if c.tier == "preferred":
                c.tier = mods.get("antiCd38ClassRefractory", {}).get("cap", "other")
            conflict = mods.get("antiCd38ClassRefractory", {}).get("conflict", "isatuximab-after-daratumumab")
            if conflict not in c.conflicts:
                c.conflicts.append(conflict)
        active = [a for a in comps if a not in STEROIDS and a not in eff]
        if min_active and comps and c.tier == "preferred" and len(active) < min_active:
            c.tier = "other"
            c.notes.append(f"fewer than {min_active} drugs the disease is not refractory to (002)")

    for reg in spec.get("checkAvoid") or []:
        if reg in cands or reg in avoid or reg not in rules.regimens:
            continue
        blocking = _by_priority([a for a in _components(rules, reg) if a in eff])
        if blocking:
            avoid[reg] = Avoid(reg, eff[blocking[0]], blocking, _len_note(state, mods) if blocking[0] == "lenalidomide" else None)

    # Availability moves options to if-unavailable; the evidence stays listed.
    avail = mods.get("availability", {})
    unavailable = {a.lower() for a in settings.unavailable_agents}
    for reg, c in cands.items():
        comps = _components(rules, reg)
        if not settings.car_t_available and reg in (avail.get("carT") or []):
            c.tier = "if-unavailable"
            c.notes.append(avail.get("carTNote", "CAR-T not available"))
        missing = [a for a in comps if a in unavailable]
        if missing:
            c.tier = "if-unavailable"
            c.notes.append(avail.get("agentNote", "Not available: {agents}").format(agents=", ".join(missing)))
    if not any(c.tier == "preferred" and _components(rules, r) for r, c in cands.items()):
        for c in sorted(cands.values(), key=lambda x: x.order):
            if c.entry.get("fallbackPreferred") and c.tier == "other":
                c.tier = "preferred"
                c.notes.append("promoted: the preferred options are not available here")
    if not settings.car_t_available and setting == "triple-class-refractory":
        notes.append(avail.get("carTNote", ""))
    if unavailable & {a for r in cands for a in _components(rules, r)}:
        notes.append(avail.get("agentNote", "").format(agents=", ".join(sorted(unavailable))))

    # Final guard, whatever the data said: nothing the patient is refractory to is preferred.
    for reg, c in cands.items():
        if c.tier == "preferred" and any(a in eff for a in _components(rules, reg)):
            c.tier = "other"

    ordered = sorted(cands.values(), key=lambda c: (TIERS.index(c.tier), not c.entry.get("pinFirst"), c.order))
    options: list[Option] = []
    for i, c in enumerate(ordered, start=1):
        reg_data = rules.regimens[c.regimen]
        src_ids = list(c.entry.get("sources") or reg_data.get("sources") or [])
        for sid in reg_data.get("sources") or []:
            if sid not in src_ids:
                src_ids.append(sid)
        c_notes = [n for n in c.notes if n]
        if c.grade_note:
            c_notes.append(c.grade_note)
        options.append(Option(c.regimen, c.tier, i, c.grade, rules.source_dicts(src_ids), c_notes,
                              bool(reg_data.get("beyondSeeds")), list(c.conflicts)))
        for conf in c.conflicts:
            if conf not in conflicts:
                conflicts.append(conf)
    return OptionsDecision(
        setting=setting, title=spec.get("title", setting), variant=variant.get("id"), options=options,
        avoid=sorted(avoid.values(), key=lambda a: a.regimen == sal.get("regimen", "salvage-ASCT")), conflicts=conflicts, notes=[n for n in dict.fromkeys(notes) if n],
        effective_refractory=eff, source_ids=list(dict.fromkeys(extra_sources)),
    )


REASON_PRIORITY = ("lenalidomide", "daratumumab", "isatuximab", "bortezomib", "carfilzomib", "pomalidomide")


def _by_priority(agents: list[str]) -> list[str]:
    """The avoid reason names the most telling agent first (lenalidomide: 002's named pitfall)."""
    rank = {a: i for i, a in enumerate(REASON_PRIORITY)}
    return sorted(agents, key=lambda a: rank.get(a, len(rank)))


def _len_note(state: ClinicalState, mods: dict[str, Any]) -> str | None:
    """Why lenalidomide counts as refractory when IMWG alone would not say so (or the 002 pitfall)."""
    if state.progressed_on_len_maintenance:
        return mods.get("lenalidomideMaintenance", {}).get("note")
    if state.len_recent_exposure and not state.is_refractory("lenalidomide"):
        return mods.get("lenalidomideRecentExposure", {}).get("note")
    return None


def salvage_asct_status(state: ClinicalState, rules: Rules) -> str | None:
    """The state's salvage-ASCT verdict; computed from the data thresholds only if the state left it empty."""
    t = state.transplant
    if t.salvage_asct:
        return t.salvage_asct
    if not state.relapsed:
        return None
    sal = rules.modifiers.get("salvageAsct", {})
    if not t.prior_asct:
        return "candidate" if t.transplant_eligible else None
    months = t.months_asct_to_progression
    if months is None:
        return None
    lo = sal.get("seed002MinMonths", 18)
    hi = sal.get("seed003MinMonthsWithoutMaintenance", 24) if t.maintenance_after_asct is False else sal.get(
        "seed003MinMonthsWithMaintenance", 36)
    if months < lo:
        return "not-recommended"
    if months >= hi:
        return "candidate"
    return "discuss"
