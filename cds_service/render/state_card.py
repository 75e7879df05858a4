"""The `state` card (patient-view): treatment history, refractoriness and risk, with the reasons.

Shaping only: every judgement comes from `ClinicalState`; this module words it so a clinician can
check each statement against the chart in seconds (dates, lines, resource references).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from cds_service.clinical.model import CLASS_AGENTS, ClinicalState
from cds_service.knowledge.loader import Knowledge
from cds_service.render.cards import make_card
from cds_service.render.text import clinician_text, clip, fit, strip_chart_refs, unique

RULE_ID = "state.treatment-history"
SEED_002 = "002_49145e8a5446c5dd.txt"
SEED_003 = "003_b26e4a5f368c32be.txt"

RAJKUMAR_2011 = (
    "Rajkumar SV, Harousseau JL, Durie B, et al. Consensus recommendations for the uniform reporting of "
    "clinical trials: report of the International Myeloma Workshop Consensus Panel 1. Blood 2011;117(18):4691-4695."
)
RAJKUMAR_2015 = (
    "Rajkumar SV, Richardson P, San Miguel JF. Guidelines for determination of the number of prior lines "
    "of therapy in multiple myeloma. Blood 2015;126(7):921-922."
)


SOURCES: list[dict[str, Any]] = [
    {
        "seed": None,
        "citation": RAJKUMAR_2011,
        # DOI as printed with this citation in a public myeloma response-criteria document
        # (search tool find_string "blood-2010-10-299487", 2026-12-06)
        "url": "https://doi.org/10.1182/blood-2010-10-299487",
        "label": "IMWG consensus — Rajkumar et al., Blood 2011",
    },
    {
        "seed": None,
        "citation": RAJKUMAR_2015,
        "url": None,  # no identifier seen for it: named, not linked
        "label": "Lines of therapy — Rajkumar et al., Blood 2015",
    },
    {
        "seed": SEED_003,
        "citation": "IMWG recommendations for relapsed myeloma (Moreau et al., Lancet Oncol 2021): lenalidomide 6-month window, salvage ASCT (36/24 months) [2A].",
        "url": "https://doi.org/10.1016/S1470-2045(20)30756-7",
        "label": "IMWG 2021 — Moreau et al., Lancet Oncol 2021",
    },
]

_CLASS_SHORT = {"IMiD": "IMiD", "PI": "PI", "anti-CD38": "anti-CD38"}


def _d(x: date | None) -> str:
    return x.isoformat() if isinstance(x, date) else "—"


def _esc(text: str) -> str:
    """Keep table cells intact: pipes would break the markdown table."""
    return str(text).replace("|", "/").replace("\n", " ")


def _refractory_agents(state: ClinicalState) -> list[str]:
    order = [a for cls in CLASS_AGENTS.values() for a in cls]
    refr = [a for a, ev in state.agents.items() if ev.status == "refractory"]
    return sorted(refr, key=lambda a: (order.index(a) if a in order else 99, a))


def summary_text(state: ClinicalState) -> str:
    """One line that says the point: lines, the strongest refractoriness label, the key risks."""
    if not state.multiple_myeloma:
        return "No multiple myeloma diagnosis in the record"
    if state.insufficient_data:
        return "Myeloma: treatment history insufficient to assess lines and refractoriness"
    n = state.prior_lines
    plural = "s" if n != 1 else ""
    cur = state.lines[-1] if state.lines else None
    if state.relapsed and state.on_therapy and cur is not None and cur.start is not None:
        head = f"Relapsed myeloma, on line {cur.number} since {cur.start.isoformat()}, no progression on it"
    elif state.relapsed and state.off_therapy_no_progression and cur is not None:
        what = "CAR-T" if _car_t_line(state, cur.number) else f"line {cur.number}"
        head = f"Myeloma after {n} line{plural}, no progression since {what} ({_d(cur.start)})"
    elif state.on_first_line:
        ongoing = bool(state.lines and state.lines[-1].ongoing)
        head = "Myeloma on first line, not relapsed" if ongoing else "Myeloma after 1 line, not relapsed"
        if state.flc_unjudged:  # "not relapsed" would claim more than the chart allows
            head = (("Myeloma on first line" if ongoing else "Myeloma after 1 line")
                    + f": progression cannot be judged from FLC ({state.flc_unjudged})")
    elif state.relapsed:
        head = f"Relapsed myeloma after {n} line{plural}"
        last = state.lines[-1] if state.lines else None
        if last is not None and not last.ongoing and last.ended_by == "progression":
            head += ", awaiting next line"
        elif (
            last is not None
            and last.ongoing
            and last.start is not None
            and state.last_progression is not None
            and last.start >= state.last_progression
        ):
            # already on the next line, no progression on it yet: say so (not "after N lines")
            head = f"Relapsed myeloma, on line {n} since {last.start.isoformat()}"
    else:
        head = f"Myeloma after {n} line{plural}, no progression documented"
        if state.flc_unjudged:
            head = f"Myeloma after {n} line{plural}: progression cannot be judged from FLC ({state.flc_unjudged})"
    refr = _refractory_agents(state)
    if state.penta_refractory:
        label = "penta-refractory"
    elif state.triple_class_refractory:
        label = "triple-class refractory"
    elif state.double_refractory:
        label = "double-refractory"
    elif refr:
        label = "refractory"
    elif state.relapsed:
        label = "no refractoriness documented"
    else:
        label = ""
    parts = [head]
    if label:
        detail = f" ({', '.join(refr)})" if refr else ""
        parts[0] += f": {label}{detail}"
    extras: list[str] = []
    if state.progressed_on_len_maintenance:
        extras.append("progressed on len maintenance")
    if state.len_recent_exposure:
        extras.append("len stopped < 6 months before progression")
    extras.extend(f for f in state.cytogenetics.findings if f != "t(11;14)")
    if state.cytogenetics.t11_14:
        extras.append("t(11;14)")
    if state.short_response:
        extras.append("short response")
    if state.plasma_cell_leukemia:
        extras.append("PCL")
    if state.extramedullary:
        extras.append("extramedullary")
    failed = [t for t, v in state.targets.items() if v == "refractory"]
    if failed:
        extras.insert(0, " and ".join(failed) + " refractory")
    if state.line_count_uncertain:
        extras.insert(0, "line count uncertain")
    if state.frail:
        extras.append("frail")
    text = "; ".join(parts + extras)
    # too long: drop the least informative words first, never cut mid-word
    if len(text) > 139 and "lenalidomide" in refr and "progressed on len maintenance" in extras:
        extras.remove("progressed on len maintenance")  # the detail says it; lenalidomide is named
        text = "; ".join(parts + extras)
    if len(text) > 139:
        parts[0] = parts[0].replace(", awaiting next line", "")
        text = "; ".join(parts + extras)
    if len(text) > 139 and refr:
        parts[0] = parts[0].replace(f" ({', '.join(refr)})", f" ({len(refr)} agents)")
        text = "; ".join(parts + extras)
    if len(text) > 139:
        parts[0] = parts[0].replace(", no progression on it", "")
        text = "; ".join(parts + extras)
    while len(text) > 139 and extras:
        extras.pop()
        text = "; ".join(parts + extras)
    return text


def _car_t_line(state: ClinicalState, number: int) -> bool:
    return any(h.kind == "CAR-T" and h.line == number for h in state.tcr_history)


def _lines_table(state: ClinicalState) -> list[str]:
    if not state.lines:
        return ["_No line of therapy could be built from the record._"]
    out = [
        "| # | Start | End | Regimen | Ended by | Progression |",
        "|---|---|---|---|---|---|",
    ]
    for ln in state.lines:
        end = "ongoing" if ln.ongoing else _d(ln.end)
        regimen = ln.label
        if ln.includes_asct and ln.asct_date:
            regimen = regimen.replace("ASCT", f"ASCT {_d(ln.asct_date)}", 1)
        out.append(
            f"| {ln.number} | {_d(ln.start)} | {end} | {_esc(regimen)} | {ln.ended_by} | {_d(ln.progression_date)} |"
        )
    return out


def _current_section(state: ClinicalState) -> list[str]:
    """Where the patient is now: the running line, or remission after a finished one."""
    cur = state.lines[-1] if state.lines else None
    if cur is None:
        return []
    if state.on_therapy:
        return [f"- **On therapy: line {cur.number}** ({_esc(cur.label)}) since {_d(cur.start)}; no progression "
                "documented since it began — not awaiting a next line"]
    if state.off_therapy_no_progression:
        return [f"- **Off therapy, no progression since line {cur.number}** ({_esc(cur.label)}, "
                f"{_d(cur.start)} – {_d(cur.end)}): remission, not a relapse"]
    return []


def _tcr_section(state: ClinicalState) -> list[str]:
    """Targets (BCMA, GPRC5D) and every T-cell redirecting / BCMA-directed therapy with its outcome."""
    out = ["- Targets: " + ", ".join(f"{t} {v}" for t, v in state.targets.items())]
    outcome_txt = {"refractory": "failed (refractory)", "exposed": "exposed, no progression on it",
                   "ongoing": "ongoing"}
    for h in state.tcr_history:
        name = "CAR-T, product not recorded" if h.agent.endswith("-unspecified") else h.agent
        when = f"infused {_d(h.start)}" if h.kind == "CAR-T" else f"{_d(h.start)} – {_d(h.end) if h.end else 'ongoing'}"
        line = f"line {h.line}" if h.line else "no line"
        prog = f"; progression {_d(h.progression_date)}" if h.progression_date else ""
        out.append(f"- {h.kind} {name} ({h.target}), {when}, {line}: {outcome_txt.get(h.outcome, h.outcome)}{prog}"
                   )
    return out


def _agents_section(state: ClinicalState) -> list[str]:
    if not state.agents:
        return ["_No anti-myeloma agent received._"]
    out = []
    refractory = [(a, ev) for a, ev in sorted(state.agents.items()) if ev.status == "refractory"]
    for a, ev in refractory:
        out.append(f"- **{a}: refractory** — {clip(strip_chart_refs(ev.reason or ''), 220)}")
    exposed = sorted(a for a, ev in state.agents.items() if ev.status != "refractory")
    if exposed:
        out.append(f"- Exposed, not refractory: {', '.join(exposed)}")
    return out


def _classes_section(state: ClinicalState) -> list[str]:
    cls = ", ".join(f"{_CLASS_SHORT.get(k, k)} {v}" for k, v in state.classes.items())
    flags = []
    if state.double_refractory:
        flags.append("double-refractory (IMiD + PI)")
    flags.append("triple-class exposed" if state.triple_class_exposed else "not triple-class exposed")
    if state.triple_class_refractory:
        flags.append("triple-class refractory")
    if state.penta_refractory:
        flags.append("penta-refractory")
    targets = [f"{t} {v}" for t, v in (getattr(state, "targets", None) or {}).items() if v != "naive"]
    out = [f"- Classes: {cls}; {'; '.join(flags)}" + (f"; targets: {', '.join(targets)}" if targets else "")]
    plm = state.progressed_on_len_maintenance
    if plm:
        out.append("- Progressed on lenalidomide maintenance")
    elif plm is None and "lenalidomide" in state.agents:
        out.append("- Progression on lenalidomide maintenance: cannot be determined")
    if state.len_recent_exposure:
        out.append("- Lenalidomide stopped 60 days – 6 months before the last progression: exposed by IMWG, but "
                   "chosen for as lenalidomide-refractory (IMWG 2021).")
    if state.frontline_anti_cd38:
        out.append(f"- Frontline anti-CD38 regimen: {state.frontline_anti_cd38.replace('-', ' ')}")
    last = []
    if state.last_progression:
        last.append(f"last progression {_d(state.last_progression)}")
    elif not state.relapsed:
        last.append("no progression documented after the first line started"
                    + (f"; progression cannot be judged from FLC ({state.flc_unjudged})" if state.flc_unjudged
                       else " (not relapsed)"))
    if state.last_response_months is not None:
        last.append(f"last response {state.last_response_months:g} months"
                    + (" (short: < 18 months, treat as high-risk)" if state.short_response else ""))
    if last:
        out.append("- " + "; ".join(last)[:1].upper() + "; ".join(last)[1:])
    return out


def _cyto_section(state: ClinicalState) -> list[str]:
    """FISH results and the high-risk assessment, naming the definition applied and what met it."""
    c = state.cytogenetics
    definition = "[IMS/IMWG 2025](https://pubmed.ncbi.nlm.nih.gov/40489728/)"
    out: list[str] = []
    if not c.tested:
        return ['- FISH: not tested (risk unknown — not "standard risk")']
    pos = ", ".join(c.findings) or "none"
    neg = ", ".join(c.negatives) or "none documented"
    t1114 = {True: "present", False: "absent", None: "not tested"}[c.t11_14]
    dated = f" (latest {_d(c.last_tested)})" if c.last_tested else ""
    out.append(f"- FISH{dated} positive: {pos}; documented negative: {neg}; t(11;14) {t1114}")
    if c.tp53_mutation is not None:
        out.append(f"- TP53 mutation: {'detected' if c.tp53_mutation else 'not detected'}")
    if c.high_risk:
        out.append(f"- **High risk** by {definition}: " + "; ".join(c.high_risk_reasons))
    elif c.high_risk is False:
        out.append(f"- Not high risk by {definition}")
    else:
        out.append(f"- High risk by {definition}: unknown (needs FISH)")
    out.extend(f"- {_esc(n)}" for n in unique(c.risk_notes))
    return out


def _transplant_section(state: ClinicalState, salvage_line: str | None) -> list[str]:
    t = state.transplant
    out = []
    if t.prior_asct:
        maint = {True: "yes", False: "no", None: "unknown"}[t.maintenance_after_asct]
        months = "unknown" if t.months_asct_to_progression is None else f"{t.months_asct_to_progression}"
        out.append(f"- Prior ASCT {_d(t.asct_date)}; {months} months to progression; maintenance after ASCT: {maint}")
    else:
        elig = {True: "yes", False: "no", None: "unknown"}[t.transplant_eligible]
        out.append(f"- No prior ASCT; transplant-eligible (age ≤ 70, not frail): {elig}")
    if salvage_line:
        out.append(f"- {salvage_line}")
    elif t.salvage_asct:
        out.append(f"- Salvage ASCT: **{t.salvage_asct}** — {clip(strip_chart_refs(t.salvage_reason or ''), 200)}")
    return out


def _patient_section(state: ClinicalState) -> list[str]:
    age = "unknown" if state.age is None else str(state.age)
    ecog = "not documented" if state.ecog is None else str(state.ecog)
    frail = {True: "yes", False: "no", None: "unknown"}[state.frail]
    flags = [n for n, v in (("plasma cell leukaemia", state.plasma_cell_leukemia),
                            ("extramedullary disease", state.extramedullary),
                            ("peripheral neuropathy", state.neuropathy)) if v]
    return [f"- Age {age}" + (" (over 75)" if state.over_75 else "") + f"; ECOG {ecog}; frail: {frail}"
            + (f"; {', '.join(flags)}" if flags else "")]


def detail_markdown(state: ClinicalState, notes: list[str] | None = None, salvage_line: str | None = None,
                    footer: str = "") -> str:
    """The card detail: each fact once, chart references left to the evidence view, ≤ 2 500 chars."""
    if not state.multiple_myeloma:
        return "No multiple myeloma diagnosis was found in the record; no myeloma assessment was made."
    uncertain = " — count uncertain (courses without a start date)" if state.line_count_uncertain else ""
    blocks: list[tuple[int, str]] = [
        (0, f"**Lines of therapy: {state.prior_lines}**{uncertain} (IMWG: induction + ASCT + maintenance = one line)\n\n"
            + "\n".join(_lines_table(state))),
    ]
    if state.line_count_uncertain:
        undated = "; ".join(strip_chart_refs(u) for u in state.undated_records[:4]) or "records without dates"
        blocks.append((0, f"_Line count uncertain — not placed in any line: {_esc(clip(undated, 300))}._"))
    current = _current_section(state)
    if current:
        blocks.append((0, "\n".join(current)))
    blocks.append((0, "**Agents**\n\n" + "\n".join(_agents_section(state))))
    if state.tcr_history or any(v != "naive" for v in state.targets.values()):
        blocks.append((0, "**T-cell redirecting therapy**\n\n" + "\n".join(_tcr_section(state))))
    blocks += [
        (1, "**Classes and status**\n\n" + "\n".join(_classes_section(state))),
        (0, "**Cytogenetics**\n\n" + "\n".join(_cyto_section(state))),
        (1, "**Transplant**\n\n" + "\n".join(_transplant_section(state, salvage_line))),
        (2, "**Patient**\n\n" + "\n".join(_patient_section(state))),
    ]
    if notes:
        blocks.append((0, "**Also**\n\n" + "\n".join(f"- {n}" for n in unique(notes))))
    if state.missing:
        missing = unique(clip(strip_chart_refs(m), 160) for m in state.missing)
        blocks.append((1, "**Missing or uncertain data**\n\n" + "\n".join(f"- {_esc(m)}" for m in missing[:6])
                       + (f"\n- and {len(missing) - 6} more (evidence view)" if len(missing) > 6 else "")))
    if state.as_of or footer:
        blocks.append((0, "_" + " ".join(x for x in (f"Assessed as of {_d(state.as_of)}." if state.as_of else "",
                                                  footer) if x) + "_"))
    return fit(blocks)


def state_card(state: ClinicalState, knowledge: Knowledge) -> dict[str, Any]:
    """The one patient-view `state` card; extension `state` is exactly CONTRACT's object.

    Notices that do not change what to do now are lines here when they concern the history
    (salvage ASCT verdicts) or when there is no options card (patient on therapy).
    """
    from cds_service.clinical.options import rules_for
    from cds_service.clinical.setting import decide_setting
    from cds_service.render.patient_view import names, notice_line, placed_notices

    indicator = "warning" if (state.triple_class_refractory or state.insufficient_data) else "info"
    notes: list[str] = []
    salvage_line = None
    folded: list[str] = []
    texts: dict[str, Any] = {}
    rules = rules_for(knowledge)
    if state.multiple_myeloma:
        texts = rules.texts.get("state") or {}
        own, _, in_state = placed_notices(state, knowledge, decide_setting(state))
        for n in own:
            if n.code.startswith("salvage-asct-"):
                salvage_line = f"Salvage ASCT: **{n.code.removeprefix('salvage-asct-')}** (its own card says why)"
        for n in in_state:
            line = notice_line(n, rules)
            if not line:
                continue
            folded.append(n.code)
            if n.code.startswith("salvage-asct-"):
                salvage_line = line
            else:
                notes.append(line)
        notes = [clinician_text(n, names(rules)) for n in notes]
    words = _agent_words(knowledge)
    return make_card(
        kind="state",
        rule_id=RULE_ID,
        knowledge_version=knowledge.version,
        summary=words(summary_text(state)),
        indicator=indicator,
        detail=words(clinician_text(detail_markdown(state, notes, salvage_line, str(texts.get("footer", ""))),
                                    rules.texts.get("sourceNames") if state.multiple_myeloma else None)),
        sources=[{k: v for k, v in s.items() if k != "label"} for s in SOURCES],
        source_label=str(texts.get("cardSource") or SOURCES[0]["label"]),
        source_url=SOURCES[0]["url"],
        extra={"state": state.to_contract(), **({"notices": folded} if folded else {})},
    )


def _agent_words(knowledge: Knowledge) -> Any:
    """Agent ids written as clinicians write the drug: "ciltacabtagene autoleucel", not the id
    "ciltacabtagene-autoleucel" (the contract's `state` extension keeps the ids)."""
    ids = sorted((str(a.get("name", "")) for a in (knowledge.mappings.get("agents") or {}).get("agents", [])
                  if "-" in str(a.get("name", ""))), key=len, reverse=True)
    if not ids:
        return lambda text: text
    pattern = re.compile(r"(?<![\w/-])(" + "|".join(re.escape(i) for i in ids) + r")(?![\w-])")
    return lambda text: pattern.sub(lambda m: m.group(1).replace("-", " "), text)

