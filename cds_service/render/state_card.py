"""The `state` card (patient-view): treatment history, refractoriness and risk, with the reasons.

Shaping only: every judgement comes from `ClinicalState`; this module words it so a clinician can
check each statement against the chart in seconds (dates, lines, resource references).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from cds_service.clinical.model import CLASS_AGENTS, ClinicalState
from cds_service.knowledge.loader import Knowledge
from cds_service.render.cards import make_card

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
        "url": None,  # no work URL seen: cited without a link rather than a search
    },
    {
        "seed": None,
        "citation": RAJKUMAR_2015,
        "url": None,
    },
    {
        "seed": SEED_003,
        "citation": "European guideline for relapsed myeloma: lenalidomide 6-month window, salvage ASCT (36/24 months) [2A].",
        "url": None,
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
    if state.on_first_line:
        ongoing = bool(state.lines and state.lines[-1].ongoing)
        head = "Myeloma on first line, not relapsed" if ongoing else "Myeloma after 1 line, not relapsed"
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
    while len(text) > 139 and extras:
        extras.pop()
        text = "; ".join(parts + extras)
    return text


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


def _agents_section(state: ClinicalState) -> list[str]:
    if not state.agents:
        return ["_No anti-myeloma agent received._"]
    out = []
    for a, ev in sorted(state.agents.items(), key=lambda kv: (kv[1].status != "refractory", kv[0])):
        refs = ", ".join(ev.sources[:4]) + (" …" if len(ev.sources) > 4 else "")
        out.append(f"- **{a}: {ev.status}** — {ev.reason}" + (f" _(chart: {refs})_" if refs else ""))
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
    out = [f"- Classes: {cls}", f"- {'; '.join(flags)}"]
    plm = state.progressed_on_len_maintenance
    out.append(
        "- Progression on lenalidomide maintenance: "
        + ("yes" if plm else "no" if plm is False else "cannot be determined")
    )
    if state.len_recent_exposure:
        out.append(
            "- Lenalidomide stopped 60 days – 6 months before the last progression: exposed by IMWG, but "
            "choose as for lenalidomide-refractory disease (seed 003)."
        )
    if state.frontline_anti_cd38:
        out.append(f"- Frontline anti-CD38 regimen: {state.frontline_anti_cd38}")
    if state.last_response_months is not None:
        out.append(
            f"- Last response: {state.last_response_months:g} months"
            + (" — short (< 18 months: treat as high-risk, seed 002)" if state.short_response else "")
        )
    if state.last_progression:
        out.append(f"- Last progression: {_d(state.last_progression)}")
    elif not state.relapsed:
        out.append("- No progression documented after the first line started (not relapsed)")
    return out


def _progression_section(state: ClinicalState) -> list[str]:
    if not state.progression_events:
        return []
    out = ["", "**Progression evidence**"]
    for e in state.progression_events[:12]:
        detail = "; ".join(dict.fromkeys(p.strip() for p in (e.detail or "").split(";") if p.strip()))
        out.append(f"- {_d(e.date)} {e.kind}: {_esc(detail) or 'progression'} _({e.source})_")
    return out


def _cyto_section(state: ClinicalState) -> list[str]:
    c = state.cytogenetics
    if not c.tested:
        return ['- FISH: not tested (risk unknown — not "standard risk")']
    pos = ", ".join(c.findings) or "none"
    neg = ", ".join(c.negatives) or "none documented"
    hr = {True: "high-risk", False: "no high-risk abnormality", None: "unknown"}[c.high_risk]
    t1114 = {True: "present", False: "absent", None: "not tested"}[c.t11_14]
    return [f"- FISH positive: {pos}; documented negative: {neg} → {hr}; t(11;14) {t1114}"]


def _transplant_section(state: ClinicalState) -> list[str]:
    t = state.transplant
    out = []
    if t.prior_asct:
        maint = {True: "yes", False: "no", None: "unknown"}[t.maintenance_after_asct]
        months = "—" if t.months_asct_to_progression is None else f"{t.months_asct_to_progression}"
        out.append(f"- Prior ASCT: {_d(t.asct_date)}; months to progression: {months}; maintenance after ASCT: {maint}")
    else:
        elig = {True: "yes", False: "no", None: "unknown"}[t.transplant_eligible]
        out.append(f"- No prior ASCT; transplant-eligible (age ≤ 70, not frail): {elig}")
    out.append(
        "- Salvage ASCT thresholds (ASCT → progression): seed 002 ≥ 18 months (< 18: do not offer); "
        "seed 003 [2A] ≥ 36 months, ≥ 24 without maintenance"
    )
    sal = t.salvage_asct or "not assessed"
    out.append(f"- Salvage ASCT: **{sal}** — {t.salvage_reason or 'no assessment'}")
    return out


def _patient_section(state: ClinicalState) -> list[str]:
    age = "unknown" if state.age is None else str(state.age)
    ecog = "not documented" if state.ecog is None else str(state.ecog)
    frail = {True: "yes", False: "no", None: "unknown"}[state.frail]
    out = [f"- Age {age}" + (" (over 75)" if state.over_75 else "") + f"; ECOG {ecog}; frail: {frail}"]
    flags = [
        n
        for n, v in (
            ("plasma cell leukemia", state.plasma_cell_leukemia),
            ("extramedullary disease", state.extramedullary),
            ("peripheral neuropathy", state.neuropathy),
        )
        if v
    ]
    if flags:
        out.append("- " + ", ".join(flags))
    return out


def detail_markdown(state: ClinicalState) -> str:
    if not state.multiple_myeloma:
        return "No multiple myeloma diagnosis was found in the record; no myeloma assessment was made."
    parts: list[str] = [
        f"**Lines of therapy** ({state.prior_lines}, IMWG: induction + ASCT + maintenance = one line)",
        "",
    ]
    parts += _lines_table(state)
    parts += ["", "**Agents**"] + _agents_section(state)
    parts += ["", "**Classes and status**"] + _classes_section(state)
    parts += _progression_section(state)
    parts += ["", "**Cytogenetics**"] + _cyto_section(state)
    parts += ["", "**Transplant**"] + _transplant_section(state)
    parts += ["", "**Patient**"] + _patient_section(state)
    if state.missing:
        parts += ["", "**Missing or uncertain data**"] + [f"- {_esc(m)}" for m in state.missing]
    if state.as_of:
        parts += [
            "",
            f"_Assessed as of {_d(state.as_of)}; refractory = progression on the agent or ≤ 60 days after its last dose (IMWG)._",
        ]
    return "\n".join(parts)


def state_card(state: ClinicalState, knowledge: Knowledge) -> dict[str, Any]:
    """The one patient-view `state` card; extension `state` is exactly CONTRACT's object."""
    indicator = "warning" if (state.triple_class_refractory or state.insufficient_data) else "info"
    return make_card(
        kind="state",
        rule_id=RULE_ID,
        knowledge_version=knowledge.version,
        summary=summary_text(state),
        indicator=indicator,
        detail=detail_markdown(state),
        sources=[dict(s) for s in SOURCES],
        extra={"state": state.to_contract()},
    )
