"""Second pass over the candidate options: targets, trial populations, labels, fitness, sequencing.

Runs after the setting's data lists and the modifiers have produced candidates, in this order:
1. a regimen against a target the disease progressed on → avoid (no same-target retreatment);
2. a patient in a group the regimen's trial excluded → avoid (its evidence does not apply);
3. labels of LABEL_REGION: not approved / pending / withdrawn → not offered (a note says so);
   off-label → `other`, marked (or not offered when the regimen says `offLabel: hide`);
4. after a failed target, T-cell redirection against another target moves to the top (switch target);
5. fitness: frail or > 75 → intensive regimens not preferred; ECOG >= 3 → T-cell redirection not
   preferred (ECOG 2: caveat);
6. CAR-T < 6 months after a bispecific → not preferred, with the date it becomes possible;
7. order: CAR-T before a BCMA bispecific in the same tier; `afterTcr` regimens (Sd) below every
   T-cell redirecting option of their tier; alkylator warning where T-cell redirection is offered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cds_service.clinical.fitness import is_frail_or_old, tcr_ecog_verdict
from cds_service.clinical.labels import label_verdict, trial_exclusion
from cds_service.clinical.model import ClinicalState
from cds_service.clinical.rules import Avoid, Rules
from cds_service.clinical.sequencing import car_t_wait_until, failed_targets
from cds_service.knowledge.model import Entry

TIERS = ("preferred", "other", "if-unavailable")


@dataclass
class Cand:
    regimen: str
    tier: str
    order: float
    entry: Entry
    notes: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    grade: str | None = None
    grade_note: str | None = None
    off_label: str | None = None

    def cap(self, tier: str, note: str | None = None) -> None:
        """Move down to `tier` if it is better than that (never up)."""
        if TIERS.index(self.tier) < TIERS.index(tier):
            self.tier = tier
        if note and note not in self.notes:
            self.notes.append(note)


@dataclass
class Adjusted:
    notes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def adjust(cands: dict[str, Cand], avoid: dict[str, Avoid], state: ClinicalState, rules: Rules,
           region: str) -> Adjusted:
    """Apply steps 1-7 (module docstring) in place; returns setting-level notes and sources."""
    cat = rules.catalog
    mods = rules.modifiers
    seq = mods.get("sequencing", {})
    lab_texts = mods.get("labels", {})
    out = Adjusted(failed=failed_targets(state, cat))

    for reg, c in list(cands.items()):
        r = cat.regimens[reg]
        hit = [t for t in cat.targets(reg) if t in out.failed]
        if hit:  # 1
            note = seq.get("failedTargetNote", "progressed on {therapy}").format(therapy=out.failed[hit[0]], target=hit[0])
            avoid.setdefault(reg, Avoid(reg, seq.get("failedTargetReason", "{target}-refractory").format(target=hit[0]),
                                        note=note))
            del cands[reg]
            continue
        group = trial_exclusion(r, state, cat)
        if group and r.trial_population:  # 2
            note = seq.get("trialExclusionNote", "{regimen}: {trial} excluded {group}").format(
                regimen=reg, trial=r.trial_population.trial, group=group)
            avoid.setdefault(reg, Avoid(reg, f"outside-{r.trial_population.trial}-population", note=note))
            out.sources.append(r.trial_population.source)
            del cands[reg]
            continue
        verdict = label_verdict(r, state, region)  # 3
        if verdict.status == "not-offered" and verdict.label:
            out.notes.append(lab_texts.get("notApprovedNote", "{regimen} not offered: {indication}").format(
                regimen=reg, indication=verdict.label.indication, region=region))
            out.sources.append(verdict.label.source)
            del cands[reg]
        elif verdict.status == "off-label" and verdict.label:
            if r.hide_off_label:
                out.notes.append(lab_texts.get("hiddenOffLabelNote", "{regimen} not offered: outside its label ({why})").format(
                    regimen=reg, why=verdict.why, region=region))
                out.sources.append(verdict.label.source)
                del cands[reg]
                continue
            c.off_label = region
            c.cap("other", lab_texts.get("offLabelNote", "off-label in {region}: {why}").format(
                region=region, why=verdict.why, indication=verdict.label.indication))
            out.sources.append(verdict.label.source)

    if out.failed:  # 4: switch target
        lead = min((c.order for c in cands.values()), default=0.0) - 10
        for reg, c in cands.items():
            if cat.is_t_cell_redirecting(reg):
                c.order = lead + c.order / 1000  # keeps their relative order, ahead of the rest
                if c.tier != "preferred" and not c.off_label:
                    c.tier = "preferred"
                c.notes.append(seq.get("switchTargetNote", "switch target").format(target=", ".join(out.failed)))
        out.sources += seq.get("sources", [])

    fit = mods.get("fitness", {})  # 5
    frail = is_frail_or_old(state, rules)
    ecog = tcr_ecog_verdict(state, rules)
    for reg, c in cands.items():
        r = cat.regimens[reg]
        if frail and r.intensive:  # never preferred, and last within whatever tier it is in
            c.cap("other", fit.get("intensiveNote", "frail or over 75: not preferred"))
            c.order += 1000
        if ecog and cat.is_t_cell_redirecting(reg):
            if ecog[0] == "cap":
                c.cap("other", ecog[1])
            elif c.tier == "preferred":
                c.notes.append(ecog[1])
    if frail or ecog:
        out.sources += fit.get("sources", [])

    wait = car_t_wait_until(state, cat, int(seq.get("carTAfterBispecificMonths", 6)))  # 6
    if wait:
        for reg, c in cands.items():
            if "CAR-T" in cat.tcr_kinds(reg):
                c.cap("other", seq.get("carTAfterBispecificNote", "CAR-T >= 6 months after a bispecific").format(
                    last=wait[0].isoformat(), from_date=wait[1].isoformat()))

    _order_within_tiers(cands, rules)  # 7
    offered_tcr = [reg for reg, c in cands.items() if c.tier != "if-unavailable" and cat.is_t_cell_redirecting(reg)]
    if offered_tcr:
        alkyl = set(seq.get("alkylatorAgents", []))
        high_dose = set(seq.get("highDoseAlkylatorRegimens", []))
        for reg, c in cands.items():
            if reg in high_dose or alkyl & set(cat.regimens[reg].components):
                c.notes.append(seq.get("alkylatorNote", "avoid alkylators before T-cell redirection"))
    return out


def _order_within_tiers(cands: dict[str, Cand], rules: Rules) -> None:
    """CAR-T ahead of BCMA bispecifics; `afterTcr` regimens below T-cell redirection (same tier)."""
    cat = rules.catalog
    for tier in TIERS:
        in_tier = [c for c in cands.values() if c.tier == tier]
        car_t = [c for c in in_tier if "CAR-T" in cat.tcr_kinds(c.regimen)]
        bcma_bispecific = [c for c in in_tier if "bispecific" in cat.tcr_kinds(c.regimen)
                           and "BCMA" in cat.targets(c.regimen)]
        if car_t and bcma_bispecific:
            first_bis = min(c.order for c in bcma_bispecific)
            for i, c in enumerate(sorted(car_t, key=lambda x: x.order)):
                if c.order > first_bis:
                    c.order = first_bis - 0.5 + i * 0.01
                    c.notes.append(rules.modifiers.get("sequencing", {}).get("carTBeforeBispecificNote", "CAR-T first"))
        tcr = [c.order for c in in_tier if cat.is_t_cell_redirecting(c.regimen)]
        if tcr:
            for c in in_tier:
                if cat.regimens[c.regimen].after_tcr and c.order < max(tcr):
                    c.order = max(tcr) + 0.5
