"""Checks on draft orders (order-select / order-sign).

Pure decision code: returns `Finding`s naming the agents, the draft orders and the patient-specific
facts (line, progression date, FISH result); `cds_service/render/orders.py` turns them into cards.
order-select looks at the selected drafts only; order-sign at all drafts. Supportive-care checks
look for an active supportive drug in the record *and* in every draft (a drug drafted alongside counts).
After T-cell redirection: a drafted agent against a target the disease progressed on, a T-cell
redirecting agent without infection prophylaxis, venetoclax without tumour-lysis precautions, and
bendamustine while T-cell redirection is an option (IMWG 2025, EMN 2025, the venetoclax label).
"""

from __future__ import annotations

from datetime import date

from cds_service.clinical.findings import Finding, active_supportive
from cds_service.clinical.model import CLASS_AGENTS, ClinicalState
from cds_service.clinical.options import (
    STEROIDS,
    OptionsDecision,
    Rules,
    effective_refractory,
    is_frail_or_old,
    rank_options,
    rules_for,
)
from cds_service.clinical.setting import anti_cd38_refractory
from cds_service.clinical.tcr_orders import tcr_findings
from cds_service.config import Settings
from cds_service.knowledge.loader import Knowledge
from cds_service.record.model import DraftOrder, PatientRecord

__all__ = ["Finding", "check_orders"]

IMIDS = frozenset(CLASS_AGENTS["IMiD"])
PIS = frozenset(CLASS_AGENTS["PI"])
ANTI_CD38 = frozenset(CLASS_AGENTS["anti-CD38"])
NOT_DOUBLET_AGENTS = frozenset({
    "idecabtagene-vicleucel", "ciltacabtagene-autoleucel", "teclistamab", "elranatamab", "talquetamab",
    "linvoseltamab", "belantamab-mafodotin",
})


def _d(value: date | None) -> str:
    return value.isoformat() if value else "date not recorded"


def _when(state: ClinicalState, agent: str) -> str:
    ev = state.agents.get(agent)
    if agent == "lenalidomide" and (ev is None or ev.status != "refractory"):
        prog = _d(state.last_progression) if state.last_progression else "date not recorded"
        if state.progressed_on_len_maintenance:
            return f"progression on maintenance, {prog}"
        if state.len_recent_exposure:
            return f"stopped < 6 months before progression on {prog}"
    if ev is None:
        return "refractory"
    lines = ", ".join(str(n) for n in ev.lines) if ev.lines else "?"
    return f"line {lines}, progression {_d(ev.progression_date)}"


def _reason(state: ClinicalState, agent: str) -> str:
    ev = state.agents.get(agent)
    if ev is None:
        return f"{agent}: no agent evidence recorded"
    if ev.reason and ev.reason.strip():
        return ev.reason.strip()  # the state's sentence already names line, dates and evidence
    return (f"line {', '.join(str(n) for n in ev.lines) or '?'}; last dose {_d(ev.last_dose)}"
            f"{' (ongoing)' if ev.ongoing else ''}; progression {_d(ev.progression_date)}")


def _alternatives(decision: OptionsDecision, rules: Rules, exclude: set[str], eff: dict[str, str],
                  limit: int, must_include: str | None = None) -> list[str]:
    out: list[str] = []
    for tier in ("preferred", "other"):
        for opt in decision.options:
            if opt.tier != tier:
                continue
            reg = rules.catalog.regimens[opt.regimen]
            comps = set(reg.components)
            drugs = reg.drugs
            if not drugs or not reg.orderable or comps & exclude or comps & set(eff):
                continue
            if must_include and (must_include not in comps or len(drugs) < 2):
                continue
            if opt.regimen not in out:
                out.append(opt.regimen)
    return out[:limit]


def check_orders(
    state: ClinicalState,
    drafts: list[DraftOrder],
    knowledge: Knowledge,
    settings: Settings,
    hook: str,
    record: PatientRecord | None = None,
) -> list[Finding]:
    """All findings for the drafts in scope (selected ones for order-select, all for order-sign)."""
    if not state.multiple_myeloma or not drafts:
        return []
    rules = rules_for(knowledge)
    scope = [d for d in drafts if d.selected] if hook == "order-select" else list(drafts)
    if not scope:
        return []
    checks = rules.checks.get("checks", {})
    eff = effective_refractory(state, rules)
    decision = rank_options(state, knowledge, settings)
    setting = decision.setting
    spec_setting = rules.settings.get(setting) or {}
    setting_label = spec_setting.get("short") or spec_setting.get("title") or setting
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()

    def alt_text(regs: list[str]) -> str:
        if not regs:
            return "see the next-line options card"
        return ", ".join(f"{r} ({rules.catalog.regimens[r].name})" for r in regs)

    def emit(f: Finding, key: str) -> None:
        if (f.code, key) in seen:
            return
        seen.add((f.code, key))
        f.params.setdefault("setting", setting_label)
        f.params.setdefault("order", ", ".join(f.orders))
        findings.append(f)

    for d in scope:
        for agent in d.agents:
            # 1. an agent the disease is refractory to (agent level, IMWG + 003's 6-month window);
            # another agent of a failed T-cell redirecting target has its own finding (tcr_orders.py).
            if agent in eff:
                spec = checks.get("refractory-agent-ordered", {})
                alts = _alternatives(decision, rules, {agent}, eff, int(spec.get("maxAlternatives", 3)))
                pitfall = ""
                if agent == "lenalidomide":
                    if state.progressed_on_len_maintenance:
                        pitfall = spec.get("pitfall", "")
                    elif state.len_recent_exposure and not state.is_refractory("lenalidomide"):
                        pitfall = spec.get("recentExposure", "")
                reason = _reason(state, agent) if agent in state.agents else spec.get("recentExposure", "")
                emit(Finding("refractory-agent-ordered", [agent], [d.ref],
                             {"agent": agent, "when": _when(state, agent), "reason": reason, "pitfall": pitfall,
                              "alternatives": alt_text(alts)}, [d], replace_with=alts), f"{agent}|{d.ref}")
            # 2. anti-CD38 retreatment / cross-resistance.
            if agent in ANTI_CD38 and anti_cd38_refractory(state):
                refractory_cd38 = [a for a in sorted(ANTI_CD38) if state.is_refractory(a)]
                if agent in refractory_cd38 or (agent == "daratumumab" and not refractory_cd38):
                    emit(Finding("anti-cd38-retreatment", [agent], [d.ref],
                                 {"agent": agent, "reason": _reason(state, agent) if agent in state.agents
                                  else "anti-CD38 class refractory"}, [d]), f"{agent}|{d.ref}")
                others = [a for a in refractory_cd38 if a != agent]
                if others and agent not in refractory_cd38:
                    spec = checks.get("anti-cd38-cross-resistance", {})
                    alts = _alternatives(decision, rules, set(ANTI_CD38), eff, int(spec.get("maxAlternatives", 3)))
                    emit(Finding("anti-cd38-cross-resistance", [agent], [d.ref],
                                 {"agent": agent, "prior": others[0], "reason": _reason(state, others[0]),
                                  "alternatives": alt_text(alts)}, [d], replace_with=alts), f"{agent}|{d.ref}")
            # 3. venetoclax needs a documented t(11;14).
            if agent == "venetoclax":
                cyto = state.cytogenetics
                fish = f" (FISH sources: {', '.join(cyto.sources)})" if cyto.sources else ""
                if cyto.t11_14 is False:
                    spec = checks.get("venetoclax-without-t11-14", {})
                    alts = _alternatives(decision, rules, {"venetoclax"}, eff, int(spec.get("maxAlternatives", 3)))
                    emit(Finding("venetoclax-without-t11-14", ["venetoclax"], [d.ref],
                                 {"fish": fish, "alternatives": alt_text(alts)}, [d], replace_with=alts), d.ref)
                elif cyto.t11_14 is None:
                    tested = "; FISH on record does not report t(11;14)" if cyto.tested else "; no FISH on record"
                    spec = checks.get("venetoclax-t11-14-unknown", {})
                    emit(Finding("venetoclax-t11-14-unknown", ["venetoclax"], [d.ref], {"fish": tested + fish}, [d],
                                 supportive=list(spec.get("suggest") or [])), d.ref)
            # 5. bortezomib IV with neuropathy.
            if agent == "bortezomib" and (d.route or "").lower() == "iv" and state.neuropathy:
                spec = checks.get("bortezomib-route-neuropathy", {})
                emit(Finding("bortezomib-route-neuropathy", ["bortezomib"], [d.ref], {"agent": agent}, [d],
                             route_change=spec.get("routeText", "subcutaneous")), d.ref)
        # 7. FISH panel at relapse.
        # Only after an earlier FISH: without one, t(11;14) (venetoclax) and the translocations the
        # IMS/IMWG 2025 risk needs are unknown, and the full panel is the right test.
        if d.is_fish_panel and state.relapsed and state.cytogenetics.tested:
            found = ", ".join(state.cytogenetics.findings) or "no abnormality reported"
            prior = f"Earlier FISH on record: {found} — primary translocations found then still stand."
            emit(Finding("repeat-fish-primary-translocations", [], [d.ref], {"prior": prior}, [d]), d.ref)

    # 4. supportive care: once per category, naming the first drafted agent that needs it.
    categories = rules.checks.get("supportiveCategories", {})
    supportive_rules = (
        ("missing-thromboprophylaxis", categories.get("thromboprophylaxis", "antithrombotic"),
         lambda d: [a for a in d.agents if a in IMIDS]),
        ("missing-zoster-prophylaxis", categories.get("zoster", "zoster-prophylaxis"),
         lambda d: [a for a in d.agents if a in PIS]),
        ("missing-antiemetic", categories.get("antiemetic", "antiemetic"),
         lambda d: [a for a in d.agents if a == "selinexor"]),
        ("missing-pjp-prophylaxis", categories.get("pjp", "pjp-prophylaxis"),
         lambda d: ([a for a in d.agents if a in STEROIDS] or [d.display or "glucocorticoid"]) if d.high_dose_steroid else []),
    )
    for code, category, needs in supportive_rules:
        hits = [(d, needs(d)) for d in scope]
        hits = [(d, a) for d, a in hits if a]
        if not hits or active_supportive(category, record, drafts):
            continue
        agents = sorted({a for _, al in hits for a in al})
        spec = checks.get(code, {})
        emit(Finding(code, agents, [d.ref for d, _ in hits], {"agent": ", ".join(agents)}, [d for d, _ in hits],
                     supportive=list(spec.get("suggest") or [])), code)

    # 8. after T-cell redirection: same target, infection prophylaxis, TLS, alkylators (tcr_orders.py).
    for f, key in tcr_findings(state, drafts, scope, record, rules, decision, eff, alt_text,
                               lambda exclude, n: _alternatives(decision, rules, exclude, eff, n)):
        emit(f, key)

    # 6. doublet in a patient not documented frail (the regimen = all drafts; fires if one is in scope).
    doublet = _doublet(state, drafts, scope, rules, setting)
    if doublet is not None and doublet[0] not in eff:  # a refractory agent has its own card
        agent, involved = doublet
        spec = checks.get("doublet-when-triplet-tolerated", {})
        alts = _alternatives(decision, rules, set(), eff, int(spec.get("maxAlternatives", 3)), must_include=agent)
        if not alts:
            alts = _alternatives(decision, rules, set(), eff, int(spec.get("maxAlternatives", 3)))
        steroid = next((a for d in involved for a in d.agents if a in STEROIDS), "dexamethasone")
        regimen = f"{agent} + {steroid}"
        emit(Finding("doublet-when-triplet-tolerated", [agent], [d.ref for d in involved],
                     {"agent": agent, "regimen": regimen, "alternatives": alt_text(alts)}, involved,
                     add_from=alts), agent)
    return findings


def _doublet(state: ClinicalState, drafts: list[DraftOrder], scope: list[DraftOrder], rules: Rules,
             setting: str) -> tuple[str, list[DraftOrder]] | None:
    """(agent, drafts) when the drafts form one anti-myeloma agent + a steroid in a non-frail patient."""
    if is_frail_or_old(state, rules):
        return None
    if setting == "triple-class-refractory":
        return None  # 000/003: Sd and single agents are the evidence-based options there
    agents = {a for d in drafts for a in d.agents}
    drugs = agents - STEROIDS
    if len(drugs) != 1 or not agents & STEROIDS:
        return None
    agent = next(iter(drugs))
    if agent in NOT_DOUBLET_AGENTS:
        return None
    involved = [d for d in drafts if set(d.agents) & (drugs | STEROIDS)]
    if not any(d in scope for d in involved):
        return None
    return agent, involved
