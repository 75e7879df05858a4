"""Rank the next-line options for a relapsed patient from the knowledge files (cards/*.yaml).

Pure decision code. First pass: the setting's data lists (settings.yaml), class rules, untried
first-relapse options and the modifiers (venetoclax with t(11;14), aggressive disease, salvage
ASCT, anti-CD38 exposure, frailty reordering) build candidates. Second pass (`adjust.py`): failed
targets, trial populations, the labels of LABEL_REGION, fitness and sequencing after T-cell
redirection. Then refractoriness, availability and a final guard that keeps every regimen with an
agent the patient is refractory to out of `preferred`. Returns plain data (`OptionsDecision`);
rendering lives in `cds_service/render/`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cds_service.clinical.adjust import Cand, adjust
from cds_service.clinical.fitness import is_frail_or_old, overruled_by_fitness, salvage_asct_status
from cds_service.clinical.model import CLASS_AGENTS, ClinicalState
from cds_service.clinical.rules import Avoid, Option, OptionsDecision, Rules, build_rules, rules_for
from cds_service.clinical.setting import anti_cd38_refractory, class_refractory, decide_setting, len_refractory_like
from cds_service.config import Settings
from cds_service.knowledge.loader import Knowledge
from cds_service.knowledge.model import Entry, SettingSpec, Variant

__all__ = ["Avoid", "Option", "OptionsDecision", "Rules", "build_rules", "effective_refractory", "is_frail_or_old",
           "rank_options", "rules_for", "salvage_asct_status"]

TIERS = ("preferred", "other", "if-unavailable")
STEROIDS = frozenset({"dexamethasone", "prednisone"})
ANTI_CD38 = frozenset(CLASS_AGENTS["anti-CD38"])


def effective_refractory(state: ClinicalState, rules: Rules) -> dict[str, str]:
    """Agents treated as refractory when choosing, with the reason code for the avoid list.

    Steroids are left out: the state may call dexamethasone "refractory" (it was in the failing
    line), but every regimen carries a steroid and the seeds never choose by steroid refractoriness.
    """
    out = {a: f"{a}-refractory" for a, ev in state.agents.items() if ev.status == "refractory" and a not in STEROIDS}
    if "lenalidomide" not in out and (state.progressed_on_len_maintenance or state.len_recent_exposure):
        out["lenalidomide"] = rules.modifiers.get("lenalidomideRecentExposure", {}).get("reason", "lenalidomide-refractory")
    return out


def _variant(spec: SettingSpec, state: ClinicalState) -> Variant:
    facts = {"lenRefractory": len_refractory_like(state), "antiCd38Refractory": anti_cd38_refractory(state)}
    for v in spec.variants:
        if all(facts.get(k) == val for k, val in v.when.items()):
            return v
    return spec.variants[-1]


def _components(rules: Rules, regimen: str) -> tuple[str, ...]:
    return rules.catalog.regimens[regimen].components


def rank_options(state: ClinicalState, knowledge: Knowledge, settings: Settings) -> OptionsDecision:
    """Tiers, ranks, grades and sources of the next-line options, plus the avoid list with reasons."""
    rules = rules_for(knowledge)
    cat = rules.catalog
    region = settings.label_region
    setting = decide_setting(state)
    spec = cat.settings.get(setting)
    eff = effective_refractory(state, rules)
    notes: list[str] = []
    conflicts: list[str] = []
    cands: dict[str, Cand] = {}
    extra_sources: list[str] = []  # sources of the modifiers applied, cited on the card
    counter = [0.0]

    def add(entry: Entry, tier: str, front: bool = False, grade_setting: str | None = None) -> None:
        reg = entry.regimen
        if reg not in cat.regimens:
            return
        counter[0] += 1
        order = -counter[0] if front else counter[0]
        if reg in cands:
            c = cands[reg]
            if TIERS.index(tier) < TIERS.index(c.tier):
                c.tier = tier
            if front:
                c.order = order
            if entry.note and entry.note not in c.notes:
                c.notes.append(entry.note)
            return
        c = Cand(reg, tier, order, entry)
        if entry.note:
            c.notes.append(entry.note)
        if entry.conflict:
            c.conflicts.append(entry.conflict)
        c.grade = entry.grade or cat.regimens[reg].grades.get(grade_setting or setting)
        if grade_setting and grade_setting != setting and c.grade:
            c.grade_note = f"grade {c.grade} is 003's grade at first relapse ({grade_setting})"
        cands[reg] = c

    if setting in ("not-relapsed", "insufficient-data", "on-therapy") or spec is None:
        return OptionsDecision(setting, spec.title if spec else setting, spec.variants[0].id if spec else None,
                               [], [], [], [], eff, region=region)
    variant = _variant(spec, state)

    if variant.note:
        notes.append(variant.note)
    for tier in TIERS:
        for entry in variant.tiers[tier]:
            add(entry, tier)

    # Later relapse: class-specific additions (002) and untried first-relapse options (003).
    for cls, (rule_note, additions) in spec.class_rules.items():
        if class_refractory(state, cls):
            notes.append(rule_note)
            for entry in additions:
                add(entry, entry.tier or "other")
    received = set(state.agents)
    for src_setting in spec.untried_from:
        for tier in ("preferred", "other"):
            for entry in cat.settings[src_setting].variants[0].tiers[tier]:
                comps = cat.regimens[entry.regimen].drugs
                if comps and comps <= received:
                    continue  # already tried
                if entry.regimen not in cands:
                    add(Entry(entry.regimen, note=spec.untried_note), tier, grade_setting=src_setting)

    # Modifiers that add regimens.
    mods = rules.modifiers
    ven = mods.get("venetoclaxT11_14", {})
    ven_regs = (ven.get("regimen", "VenVd"), ven.get("piRefractoryRegimen", "Vend"))
    for reg in ven_regs:
        cands.pop(reg, None)  # never without t(11;14) (BELLINI OS HR 3.13); chosen below when present
    if ven and state.cytogenetics.t11_14 is True:
        # every setting: with bortezomib (VenVd) while it still works, else venetoclax-dexamethasone
        reg = ven_regs[0] if "bortezomib" not in eff else ven_regs[1]
        add(Entry(reg, note=ven.get("note"), sources=tuple(ven.get("sources") or ())),
            ven.get("tier", "other"), front=ven.get("position") == "first")
        notes.append(ven.get("note", ""))
        extra_sources += ven.get("sources") or []
    aggr = mods.get("aggressiveDisease", {})
    if aggr and (state.plasma_cell_leukemia or state.extramedullary):
        reg = aggr.get("regimen", "VDT-PACE")
        allowance = tuple(aggr.get("allowRefractory") or ())
        add(Entry(reg, note=aggr.get("note"), sources=tuple(aggr.get("sources") or ()), allow_refractory=allowance),
            aggr.get("tier", "preferred"), front=True)
        if reg in cands:  # the modifier's allowance wins over a setting list's narrower one
            c = cands[reg]
            c.entry = replace(c.entry, allow_refractory=tuple(sorted(set(c.entry.allow_refractory) | set(allowance))))
        notes.append(aggr.get("note", ""))
        extra_sources += aggr.get("sources") or []
    sal = mods.get("salvageAsct", {})
    salvage = salvage_asct_status(state, rules)
    avoid: dict[str, Avoid] = {}
    if salvage in ("candidate", "discuss") and setting != "triple-class-refractory":
        tier = sal.get("candidateTier" if salvage == "candidate" else "discussTier", "other")
        add(Entry(sal.get("regimen", "salvage-ASCT"), sources=tuple(sal.get("sources") or ()),
                  note=f"Salvage ASCT: {salvage} (see the salvage-ASCT notice)"), tier)
    elif salvage == "not-recommended" and setting != "triple-class-refractory":
        reason, note = _salvage_avoid(state, rules, mods)
        avoid[sal.get("regimen", "salvage-ASCT")] = Avoid(sal.get("regimen", "salvage-ASCT"), reason, note=note)
    thresholds_decide = (state.prior_lines <= 1 and not overruled_by_fitness(state, rules)
                         and not state.transplant.salvage_why.startswith("not fit"))
    if state.transplant.prior_asct and state.transplant.months_asct_to_progression is not None and thresholds_decide:
        conflicts.append("salvage-asct-thresholds")  # the 18- vs 36/24-month thresholds matter only here

    # Anti-CD38 exposed but not refractory; frailty: reorder within data-given lists.
    cd38 = state.classes.get("anti-CD38")
    exposed_block = spec.anti_cd38_exposed
    if exposed_block and cd38 == "exposed":
        notes.append(exposed_block.note)
        extra_sources += exposed_block.sources
        for reg in reversed(exposed_block.first):
            if reg in cands:
                add(Entry(reg), "preferred", front=True)
        for reg in reversed(exposed_block.other_first):
            if reg in cands and cands[reg].tier != "preferred":
                add(Entry(reg), "other", front=True)
    frail_block = spec.frail
    if frail_block and is_frail_or_old(state, rules):
        notes.append(frail_block.note or mods.get("frailOrOver75", {}).get("note", ""))
        extra_sources += mods.get("frailOrOver75", {}).get("sources") or []
        for reg in frail_block.demote:
            if reg in cands and cands[reg].tier == "preferred":
                cands[reg].tier = "other"
                cands[reg].notes.append("frail or over 75: not first")
        for reg in reversed(frail_block.first):
            if reg in cands:
                add(Entry(reg), "preferred", front=True)

    # Targets, trial populations, labels, fitness, sequencing after T-cell redirection (adjust.py).
    adjusted = adjust(cands, avoid, state, rules, region)
    notes += adjusted.notes
    extra_sources += adjusted.sources

    # Refractoriness: avoid, cap, or allow (agent level, never class level, except anti-CD38 cross-resistance).
    cap_cd38 = anti_cd38_refractory(state)
    min_active = spec.min_active_for_preferred
    for reg, c in list(cands.items()):
        comps = _components(rules, reg)
        refr = [a for a in comps if a in eff]
        allowed = set(c.entry.allow_refractory)
        blocking = _by_priority([a for a in refr if a not in allowed])
        if blocking:
            note = _len_note(state, mods) if blocking[0] == "lenalidomide" else None
            avoid.setdefault(reg, Avoid(reg, eff[blocking[0]], blocking, note))
            del cands[reg]
            continue
        if refr:
            c.tier = "other" if c.tier == "preferred" else c.tier
            c.notes.append(f"despite {', '.join(refr)}-refractory disease: " + (c.entry.note or "seed allows it"))
        if cap_cd38 and any(a in ANTI_CD38 for a in comps):
            if c.tier == "preferred":
                c.tier = mods.get("antiCd38ClassRefractory", {}).get("cap", "other")
            conflict = mods.get("antiCd38ClassRefractory", {}).get("conflict", "isatuximab-after-daratumumab")
            if conflict not in c.conflicts:
                c.conflicts.append(conflict)
        active = [a for a in comps if a not in STEROIDS and a not in eff]
        # The two-active-drugs rule is for combinations; a CAR-T or bispecific is given alone.
        if (min_active and comps and c.tier == "preferred" and len(active) < min_active
                and not cat.is_t_cell_redirecting(reg)):
            c.tier = "other"
            c.notes.append(f"fewer than {min_active} drugs the disease is not refractory to (002)")

    for reg in spec.check_avoid:
        if reg in cands or reg in avoid or reg not in cat.regimens:
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
            if c.entry.fallback_preferred and c.tier == "other":
                c.tier = "preferred"
                c.notes.append("promoted: the preferred options are not available here")
    if not settings.car_t_available and any(r in cands for r in avail.get("carT") or []):
        notes.append(avail.get("carTNote", ""))
    if unavailable & {a for r in cands for a in _components(rules, r)}:
        notes.append(avail.get("agentNote", "").format(agents=", ".join(sorted(unavailable))))

    # Final guard, whatever the data said: nothing the patient is refractory to is preferred.
    for reg, c in cands.items():
        if c.tier == "preferred" and any(a in eff for a in _components(rules, reg)):
            c.tier = "other"

    ordered = sorted(cands.values(), key=lambda c: (TIERS.index(c.tier), not c.entry.pin_first, c.order))
    options: list[Option] = []
    for i, c in enumerate(ordered, start=1):
        reg_data = cat.regimens[c.regimen]
        src_ids = list(c.entry.sources or reg_data.sources)
        src_ids += [sid for sid in reg_data.sources if sid not in src_ids]
        c_notes = [n for n in c.notes if n]
        if c.grade_note:
            c_notes.append(c.grade_note)
        for sup in reg_data.supersedes:  # a seed claim the field moved past: say so, cite the newer source
            c_notes.append(mods.get("labels", {}).get("supersededNote", "Supersedes {seed_short}: {now}").format(
                seed_short=sup.seed[:3], claim=sup.claim, now=sup.now))
            src_ids.insert(1, sup.source)
        options.append(Option(c.regimen, c.tier, i, c.grade, rules.source_dicts(list(dict.fromkeys(src_ids))), c_notes,
                              reg_data.beyond_seeds, list(c.conflicts), c.off_label))
        for conf in c.conflicts:
            if conf not in conflicts:
                conflicts.append(conf)
    return OptionsDecision(
        setting=setting, title=spec.title, variant=variant.id, options=options,
        avoid=sorted(avoid.values(), key=lambda a: a.regimen == sal.get("regimen", "salvage-ASCT")), conflicts=conflicts, notes=[n for n in dict.fromkeys(notes) if n],
        effective_refractory=eff, source_ids=list(dict.fromkeys(extra_sources)), region=region,
        failed_targets=adjusted.failed,
        t_cell_redirection=[o.regimen for o in options if o.tier != "if-unavailable" and cat.is_t_cell_redirecting(o.regimen)],
    )


def _salvage_avoid(state: ClinicalState, rules: Rules, mods: dict[str, Any]) -> tuple[str, str | None]:
    """Why salvage ASCT is not recommended, named by what decided it: fitness (ECOG >= 3, > 75),
    a remission after the first ASCT shorter than the lower threshold, a relapse after more than one
    line (an option at first relapse only), or no transplant and no eligibility."""
    t = state.transplant
    months = t.months_asct_to_progression
    lo = mods.get("salvageAsct", {}).get("seed002MinMonths", 18)
    if overruled_by_fitness(state, rules) or t.salvage_why.startswith("not fit"):
        return "not-fit-for-salvage-asct", mods.get("fitness", {}).get("salvageAsctNote") or t.salvage_why or None
    if t.prior_asct and months is not None and months < lo:
        return (mods.get("salvageAsct", {}).get("avoidReason", "remission-after-asct-under-18-months"),
                f"{months} months from ASCT to progression (< {lo})")
    if t.salvage_why.startswith("relapse after"):
        return "salvage-asct-at-first-relapse-only", t.salvage_why
    if not t.prior_asct:
        return "not-transplant-eligible", "never transplanted and not transplant-eligible"
    return "salvage-asct-not-recommended", t.salvage_why or None


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
