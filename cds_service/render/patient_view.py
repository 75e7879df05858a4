"""patient-view cards: one `options` card and the `notice` cards (the state card is rendered elsewhere).

Shapes only: the decisions come from `cds_service.clinical.options` / `notices`, the wording from
`cards/texts.yaml` and `cards/notices.yaml`; every card goes through `make_card`.
"""

from __future__ import annotations

import logging
from typing import Any

from cds_service.clinical.model import ClinicalState
from cds_service.clinical.notices import Notice, decide_notices
from cds_service.clinical.options import OptionsDecision, Rules, rank_options, rules_for
from cds_service.config import Settings
from cds_service.knowledge.loader import Knowledge
from cds_service.render.cards import MAX_SUMMARY, make_card

log = logging.getLogger(__name__)
TIER_TITLES = {"preferred": "Preferred", "other": "Other options", "if-unavailable": "If the above are unavailable"}


class _Safe(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, params: dict[str, Any]) -> str:
    """Fill `{placeholders}`; an unknown placeholder stays visible rather than crashing a request."""
    return template.format_map(_Safe(params))


def _date(d: Any) -> str:
    return d.isoformat() if d is not None and hasattr(d, "isoformat") else "date not recorded"


def _state_facts(state: ClinicalState, decision: OptionsDecision) -> list[str]:
    """The patient-specific reasons for the setting, checkable against the chart."""
    facts = [f"Prior lines of therapy: **{state.prior_lines}**"
             + (f"; last progression {_date(state.last_progression)}" if state.last_progression else "")]
    for line in state.lines:
        facts.append(f"Line {line.number}: {line.label or ', '.join(line.agents)} "
                     f"({_date(line.start)} – {'ongoing' if line.ongoing else _date(line.end)}; ended by {line.ended_by})")
    for agent, ev in sorted(state.agents.items()):
        if ev.status == "refractory":
            where = f"line {', '.join(map(str, ev.lines)) or '?'}, progression {_date(ev.progression_date)}"
            facts.append(f"**{agent}-refractory**: {ev.reason.strip() if ev.reason else where}")
    for agent, reason in decision.effective_refractory.items():
        if agent not in state.agents or state.agents[agent].status != "refractory":
            facts.append(f"**{agent}** treated as refractory for choosing ({reason}; progression on maintenance "
                         f"or stopped < 6 months before progression, 003)")
    cls = ", ".join(f"{k} {v}" for k, v in state.classes.items())
    facts.append(f"Classes: {cls}")
    if state.frontline_anti_cd38:
        facts.append(f"Frontline anti-CD38: {state.frontline_anti_cd38}")
    if state.cytogenetics.tested:
        t1114 = {True: "present", False: "absent", None: "unknown"}[state.cytogenetics.t11_14]
        facts.append(f"FISH: {', '.join(state.cytogenetics.findings) or 'no abnormality reported'}; t(11;14) {t1114}")
    else:
        facts.append("FISH: none on record (cytogenetic risk unknown)")
    if state.frail or state.over_75:
        facts.append("Frail or over 75: all-oral / gentler options first")
    return facts


def source_label(src: dict[str, Any], limit: int = 70) -> str:
    """A short link text: the citation without its seed pointer, cut on a word."""
    text = (src.get("citation") or "source").split(" (seed")[0].strip()
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0].rstrip(",;:.") + "…"
    seed = src.get("seed")
    return f"{text} (seed {seed[:3]})" if seed else f"{text} (beyond the seeds)"


def _option_line(rules: Rules, opt: Any, texts: dict[str, str]) -> str:
    reg = rules.regimens[opt.regimen]
    grade = f" **[{opt.grade}]**" if opt.grade else ""
    n = {"preferred": 2, "other": 1}.get(opt.tier, 0)  # if-unavailable: one compact line
    figures = "; ".join(f"{f['text']} ({f['seed'][:3] if f.get('seed') else f.get('source', '')})"
                        for f in reg.get("figures", [])[:n])
    links = ", ".join(f"[{source_label(s)}]({s['url']})" for s in opt.sources[:n] if s.get("url"))
    beyond = f" — *{texts.get('beyondSeeds', 'beyond the seeds')}*" if opt.beyond_seeds else ""
    notes = f" — {'; '.join(opt.notes)}" if opt.notes else ""
    return (f"{opt.rank}. **{opt.regimen}** ({reg.get('name', '')}){grade}{beyond}{notes}"
            + (f"  \n   {figures}" if figures else "") + (f"  \n   Sources: {links}" if links else ""))


def _summary(decision: OptionsDecision, short: str, texts: dict[str, str]) -> str:
    if decision.setting == "not-relapsed":
        return texts.get("summaryNotRelapsed", "No relapse documented")
    if decision.setting == "insufficient-data":
        return texts.get("summaryInsufficient", "Treatment history insufficient")
    preferred = [o for o in decision.options if o.tier == "preferred"]
    if not preferred:
        return fill(texts.get("summaryNoPreferred", "{setting_title}: no preferred option"), {"setting_title": short})
    text = f"{short}: preferred "
    parts = []
    for o in preferred:
        part = f"{o.regimen}" + (f" [{o.grade}]" if o.grade else "")
        if len(text + ", ".join([*parts, part])) > MAX_SUMMARY - 25:
            break
        parts.append(part)
    text += ", ".join(parts)
    if decision.avoid:
        avoid = "; avoid " + ", ".join(a.regimen for a in decision.avoid[:3])
        if len(text + avoid) <= MAX_SUMMARY:
            text += avoid
    return text


def options_card(state: ClinicalState, decision: OptionsDecision, rules: Rules) -> dict[str, Any]:
    spec = rules.settings.get(decision.setting, {})
    texts = (rules.texts.get("options") or {})
    short = spec.get("short") or spec.get("title") or decision.setting
    lines = [f"**Setting:** {spec.get('title', decision.setting)} ({spec.get('letter', '-')})", ""]
    lines += [f"- {f}" for f in _state_facts(state, decision)]
    if decision.notes:
        lines += ["", *[f"> {n}" for n in decision.notes]]
    if decision.setting == "triple-class-refractory" and texts.get("tcrPrognosis"):
        lines += ["", f"**{texts['tcrPrognosis']}**"]
    for tier in ("preferred", "other", "if-unavailable"):
        opts = [o for o in decision.options if o.tier == tier]
        if opts:
            lines += ["", f"### {TIER_TITLES[tier]}", *[_option_line(rules, o, texts) for o in opts]]
    if decision.avoid:
        lines += ["", "### Avoid"]
        for a in decision.avoid:
            lines.append(f"- **{a.regimen}** — {a.reason}" + (f": {a.note}" if a.note else ""))
    if decision.conflicts:
        lines += ["", "### The seeds disagree"]
        for cid in decision.conflicts:
            c = rules.conflicts.get(cid)
            if c:
                lines.append(f"- **{c['title']}** — {c['text']}")
    if texts.get("footer"):
        lines += ["", f"*{texts['footer']}*"]
    src_ids = list(spec.get("sources") or []) + list(decision.source_ids)
    for cid in decision.conflicts:
        src_ids += (rules.conflicts.get(cid) or {}).get("sources", [])
    sources = rules.source_dicts(src_ids)
    seen = {s["citation"] for s in sources}
    for o in decision.options:
        for s in o.sources[:1]:
            if s["citation"] not in seen:
                seen.add(s["citation"])
                sources.append(s)
    indicator = "info"
    return make_card(
        kind="options", rule_id=f"options/{decision.setting}", knowledge_version=rules.version,
        summary=_summary(decision, short, texts), indicator=indicator, detail="\n".join(lines), sources=sources,
        extra={"setting": decision.setting,
               "options": [o.to_contract() for o in decision.options],
               "avoid": [a.to_contract() for a in decision.avoid],
               "conflicts": list(decision.conflicts)},
    )


def notice_card(notice: Notice, rules: Rules) -> dict[str, Any] | None:
    spec = rules.notices.get(notice.code)
    if spec is None:
        return None
    return make_card(
        kind="notice", rule_id=f"notice/{notice.code}", knowledge_version=rules.version,
        summary=fill(spec["summary"], notice.params), indicator=spec.get("indicator", "info"),
        detail=fill(spec["detail"], notice.params).strip(), sources=rules.source_dicts(spec.get("sources", [])),
        extra={"code": notice.code},
    )


def view_settings_key(settings: Settings) -> tuple[Any, ...]:
    """The settings the patient-view cards depend on (clinical/options.py reads these three).

    Part of the key under which rendered cards are reused for an unchanged chart (pipeline.py):
    a setting that starts to shape these cards must be added here.
    """
    return (bool(settings.car_t_available), tuple(sorted(a.lower() for a in settings.unavailable_agents)),
            settings.label_region)


def patient_view_cards(state: ClinicalState, knowledge: Knowledge, settings: Settings) -> list[dict[str, Any]]:
    """For a myeloma patient: exactly one options card, then the notice cards; [] otherwise."""
    if not state.multiple_myeloma:
        return []
    rules = rules_for(knowledge)
    decision = rank_options(state, knowledge, settings)
    cards = [options_card(state, decision, rules)]
    for notice in decide_notices(state, knowledge, decision.setting):
        try:
            card = notice_card(notice, rules)
        except (KeyError, ValueError, TypeError, IndexError):  # one bad text must not cost the other cards
            log.exception("notice card failed", extra={"ruleId": f"notice/{notice.code}"})
            continue
        if card is not None:
            cards.append(card)
    return cards
