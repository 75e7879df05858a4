"""patient-view cards: the options card and the notices that change what to do now.

Shapes only: the decisions come from `cds_service.clinical.options` / `notices`, the wording from
`cards/texts.yaml` and `cards/notices.yaml`; every card goes through `make_card`.

Card economy: a chart opens with the treatment-history card (state_card.py), one options card and
at most the notices that change what to do now; every other notice is one line of the card it
belongs to. The options card is short (what to give, what to avoid and why, named sources); the
figures, every source and the chart references are one click away in the evidence view.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

from cds_service.clinical.model import ClinicalState
from cds_service.clinical.notices import Notice, decide_notices
from cds_service.clinical.options import OptionsDecision, Rules, rank_options, rules_for
from cds_service.config import Settings
from cds_service.knowledge.loader import Knowledge
from cds_service.render.advice import fitted_note
from cds_service.render.cards import MAX_SUMMARY, make_card
from cds_service.render.text import adds_to, card_source, cite, clinician_text, clip, fit, opens_work, similar, unique

log = logging.getLogger(__name__)
TIER_TITLES = {"preferred": "Preferred", "other": "Other options", "if-unavailable": "If the above are unavailable"}
NO_OPTIONS_SETTINGS = frozenset({"on-therapy"})  # the current line is running: no next-line card
SEVERITY = {"info": 0, "warning": 1, "critical": 2}
OWN_CARD_LIMIT = 2  # state + options + at most two notices: never more than four cards


class _Safe(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, params: dict[str, Any]) -> str:
    """Fill `{placeholders}`; an unknown placeholder stays visible rather than crashing a request."""
    return template.format_map(_Safe(params))


def names(rules: Rules) -> dict[str, Any]:
    """The seeds' clinician names (texts.yaml `sourceNames`)."""
    return dict(rules.texts.get("sourceNames") or {})


def say(rules: Rules, text: str) -> str:
    """Clinician wording of a knowledge text: no internal source ids, setting codes or chart references."""
    text = clinician_text(text, names(rules))
    if "-" in text:
        for code, spec in rules.settings.items():
            if code in text:
                text = text.replace(f"({code})", "").replace(code, str(spec.get("short") or spec.get("title") or code))
        text = drug_words(rules, text)
    return text


@functools.lru_cache(maxsize=8)
def _agent_id_pattern(ids: tuple[str, ...]) -> re.Pattern[str] | None:
    if not ids:
        return None
    return re.compile(r"(?<![\w/-])(" + "|".join(re.escape(i) for i in ids) + r")(?![\w-])")


def drug_words(rules: Rules, text: str) -> str:
    """Agent ids written as clinicians write the drug ("ciltacabtagene autoleucel", not the id
    "ciltacabtagene-autoleucel"); the contract's extensions keep the ids."""
    if "-" not in text:
        return text
    pattern = _agent_id_pattern(tuple(sorted((a for a in rules.agents if "-" in a), key=len, reverse=True)))
    return pattern.sub(lambda m: m.group(1).replace("-", " "), text) if pattern else text


def source_label(src: dict[str, Any], limit: int = 70) -> str:
    """A short link text for a source (trial — first author, journal year; or the guideline's name)."""
    from cds_service.render.text import source_name
    return clip(source_name(src) or "source", limit)


def regimen_label(code: str, name: str | None) -> str:
    """'PVd (pomalidomide + bortezomib + dexamethasone)'; a single agent by its name only once."""
    if not name or name.lower() == code.lower():
        return code.replace("-", " ") if code == "clinical-trial" else code
    if name.lower().startswith(code.lower()):
        return name
    return f"{code} ({name})"


def _display(code: str) -> str:
    return {"clinical-trial": "clinical trial", "salvage-ASCT": "salvage ASCT"}.get(code, code)


def _why_setting(state: ClinicalState, decision: OptionsDecision) -> str:
    """One sentence: what puts the patient in this setting (agents, not chart ids)."""
    refr = sorted(a for a, ev in state.agents.items() if ev.status == "refractory")
    eff = [a for a in decision.effective_refractory if a not in refr]
    parts = [f"{state.prior_lines} prior line{'s' if state.prior_lines != 1 else ''}"]
    if refr:
        parts.append("refractory to " + ", ".join(refr))
    if eff:
        parts.append("treated as refractory for choosing: " + ", ".join(eff)
                     + " (stopped < 6 months before progression or progressed on maintenance)")
    naive = [k for k, v in state.classes.items() if v == "naive"]
    if naive:
        parts.append(", ".join(naive) + " naive")
    return "; ".join(parts) + "."


def _option_item(rules: Rules, opt: Any, texts: dict[str, str], with_note: bool, said: list[str]) -> str:
    reg = rules.regimens.get(opt.regimen, {})
    bits = [f"**{_display(opt.regimen)}**" + (f" — {reg['name']}" if reg.get("name") and
                                                 reg["name"].lower() != opt.regimen.lower() else "")]
    if opt.grade:
        bits.append(f"grade {opt.grade}")
    if opt.beyond_seeds:
        bits.append(texts.get("beyondSeeds", "not graded in IMWG 2021"))
    linked = [x for x in opt.sources if opens_work(x.get("url"))]
    trial = str(reg.get("trial") or "")
    src = cite(linked, names(rules), limit=1) or ("" if trial.lower() in ("", "n/a", "none") else trial)
    if src:
        bits.append(src)
    line = " · ".join(bits)
    if with_note and opt.notes:
        notes = [n for n in unique(say(rules, n) for n in opt.notes)
                 if adds_to(n, line) and not any(similar(n, x) for x in said)]
        said.extend(notes)
        if notes:
            line += f"  \n  _{clip('; '.join(notes), 150)}_"
    return line


def _compact(opts: list[Any]) -> str:
    def one(o: Any) -> str:
        tags = [t for t in (o.grade, f"off-label in {o.off_label}" if getattr(o, "off_label", None) else None) if t]
        return _display(o.regimen) + (f" ({'; '.join(tags)})" if tags else "")
    return ", ".join(one(o) for o in opts)


def _avoid_lines(decision: OptionsDecision, limit: int = 8) -> list[str]:
    """Avoid, grouped by reason: each reason once, its regimens listed after it."""
    groups: dict[str, list[str]] = {}
    for a in decision.avoid:
        groups.setdefault(a.reason, []).append(a.regimen)
    out = []
    for reason, regs in groups.items():
        shown = regs[:limit]
        more = f" and {len(regs) - limit} more" if len(regs) > limit else ""
        trial = re.fullmatch(r"outside-(.+)-population", reason)
        shown_reason = (reason if reason.endswith("-refractory") else f"outside the {trial.group(1)} population" if trial
                        else re.sub(r"\basct\b", "ASCT", reason.replace("-", " ")))
        out.append(f"- {shown_reason}: {', '.join(_display(r) for r in shown)}{more}")
    return out


def _summary(decision: OptionsDecision, short: str, texts: dict[str, str], flc_unjudged: str = "") -> str:
    if decision.setting == "not-relapsed":
        if flc_unjudged:
            return texts.get("summaryFlcUnjudged", "Progression cannot be judged from FLC ({why})").format(why=flc_unjudged)
        return texts.get("summaryNotRelapsed", "No relapse documented")
    if decision.setting == "insufficient-data":
        return texts.get("summaryInsufficient", "Treatment history insufficient")
    preferred = [o for o in decision.options if o.tier == "preferred"]
    if not preferred:
        return fill(texts.get("summaryNoPreferred", "{setting_title}: no preferred option"), {"setting_title": short})
    text = f"{short}: preferred "
    parts: list[str] = []
    for o in preferred:
        part = _display(o.regimen) + (f" [{o.grade}]" if o.grade else "")
        if len(text + ", ".join([*parts, part])) > MAX_SUMMARY - 30:
            break
        parts.append(part)
    text += ", ".join(parts)
    # The most telling avoid reason: refractoriness first (the seeds' named pitfall), then the rest.
    reasons = sorted(dict.fromkeys(a.reason for a in decision.avoid), key=lambda r: not r.endswith("-refractory"))
    if reasons:
        avoid = "; avoid " + _avoid_words(reasons[0], decision)
        if len(text + avoid) <= MAX_SUMMARY:
            text += avoid
    return text


def _avoid_words(reason: str, decision: OptionsDecision) -> str:
    """An avoid reason code in words for the one-line summary."""
    if reason.endswith("-refractory"):
        return reason.replace("-refractory", "") + "-based"
    regs = [_display(a.regimen) for a in decision.avoid if a.reason == reason]
    trial = re.fullmatch(r"outside-(.+)-population", reason)
    if trial:
        return f"{', '.join(regs)} (outside the {trial.group(1)} population)"
    if "salvage" in reason or "asct" in reason:
        return "salvage ASCT" + (" (not fit)" if reason.startswith("not-fit") else "")
    return f"{', '.join(regs)} ({reason.replace('-', ' ')})"


def notice_line(notice: Notice, rules: Rules) -> str | None:
    spec = rules.notices.get(notice.code)
    if spec is None:
        return None
    template = spec.get("line") or spec["summary"]
    return say(rules, fill(template, notice.params))


def options_card(state: ClinicalState, decision: OptionsDecision, rules: Rules,
                 folded: list[Notice] | None = None) -> dict[str, Any]:
    spec = rules.settings.get(decision.setting, {})
    texts = (rules.texts.get("options") or {})
    short = spec.get("short") or spec.get("title") or decision.setting
    folded = folded or []
    blocks: list[tuple[int, str]] = []
    title = say(rules, str(spec.get("title", decision.setting)))
    if decision.setting == "not-relapsed":
        blocks.append((0, f"**{title}** — {texts.get('notRelapsed', '')}"))
    elif decision.setting == "insufficient-data":
        blocks.append((0, f"**{title}** — {texts.get('insufficient', '')}"))
    else:
        blocks.append((0, f"**{title}** — {_why_setting(state, decision)}"))
    now = [line for line in (notice_line(n, rules) for n in folded) if line]
    if decision.setting == "triple-class-refractory" and texts.get("tcrPrognosis") and not any(
            n.code == "clinical-trial" and n.params.get("prognosis") for n in folded):
        now.append(say(rules, texts["tcrPrognosis"]))
    said: list[str] = list(now)
    if now:
        blocks.append((0, "\n".join(f"- {line}" for line in unique(now))))
    for tier in ("preferred", "other", "if-unavailable"):
        opts = [o for o in decision.options if o.tier == tier]
        if not opts:
            continue
        if tier == "preferred":
            items = [f"{i}. {_option_item(rules, o, texts, with_note=True, said=said)}" for i, o in enumerate(opts, 1)]
            blocks.append((0, f"**{TIER_TITLES[tier]}**\n\n" + "\n".join(items)))
        else:
            ungraded = [_display(o.regimen) for o in opts if o.beyond_seeds]
            extra = (f"  \n  _{texts.get('beyondSeeds', 'not graded in IMWG 2021')}: {', '.join(ungraded)}_"
                     if ungraded else "")
            blocks.append((1, f"**{TIER_TITLES[tier]}:** {_compact(opts)}{extra}"))
    if decision.avoid:
        blocks.append((1, "**Avoid**\n\n" + "\n".join(_avoid_lines(decision))))
    if decision.conflicts:
        lines = []
        for cid in decision.conflicts:
            c = rules.conflicts.get(cid)
            if c:
                title_c = say(rules, c["title"]).replace("Sources disagree: ", "")
                lines.append(f"- **{title_c}** — {clip(say(rules, c['text']), 220)}")
        if lines:
            blocks.append((2, "**Where sources disagree**\n\n" + "\n".join(lines)))
    if decision.notes:
        eff = decision.effective_refractory
        notes = [n for n in unique(say(rules, fitted_note(n, state, eff)) for n in decision.notes)
                 if not any(similar(n, x) for x in said)]
        said.extend(notes)
        if notes:
            blocks.append((3, "**Notes**\n\n" + "\n".join(f"- {clip(n, 200)}" for n in notes)))
    if texts.get("footer") and decision.options:
        blocks.append((0, f"_{say(rules, texts['footer'])}_"))
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
    for n in folded:
        for s in rules.source_dicts((rules.notices.get(n.code) or {}).get("sources", [])):
            if s["citation"] not in seen:
                seen.add(s["citation"])
                sources.append(s)
    indicator = "info"
    for n in folded:
        ind = (rules.notices.get(n.code) or {}).get("indicator", "info")
        if ind == "critical" or (n.code == "insufficient-data"):
            indicator = max(indicator, ind, key=lambda x: SEVERITY.get(x, 0))
    top = [o for o in decision.options if o.tier == "preferred"][:1]
    top_linked = [x for o in top for x in o.sources if opens_work(x.get("url"))][:1]
    src = card_source(top_linked + rules.source_dicts(list(spec.get("sources") or [])), "IMWG 2021 guideline",
                      names(rules))
    return make_card(
        kind="options", rule_id=f"options/{decision.setting}", knowledge_version=rules.version,
        summary=drug_words(rules, _summary(decision, short, texts, state.flc_unjudged)), indicator=indicator,
        detail=drug_words(rules, fit(blocks)), sources=sources,
        source_label=src["label"], source_url=src.get("url"),
        extra={"setting": decision.setting,
               "options": [o.to_contract() for o in decision.options],
               "avoid": [a.to_contract() for a in decision.avoid],
               "conflicts": list(decision.conflicts),
               **({"notices": [n.code for n in folded]} if folded else {})},
    )


def notice_card(notice: Notice, rules: Rules) -> dict[str, Any] | None:
    spec = rules.notices.get(notice.code)
    if spec is None:
        return None
    sources = rules.source_dicts(spec.get("sources", []))
    src = card_source(sources, "Relapsed myeloma guidance", names(rules))
    return make_card(
        kind="notice", rule_id=f"notice/{notice.code}", knowledge_version=rules.version,
        summary=say(rules, fill(spec["summary"], notice.params)), indicator=spec.get("indicator", "info"),
        detail=fit([(0, say(rules, fill(spec["detail"], notice.params)))]), sources=sources,
        source_label=src["label"], source_url=src.get("url"),
        extra={"code": notice.code},
    )


def view_settings_key(settings: Settings) -> tuple[Any, ...]:
    """The settings the patient-view cards depend on (clinical/options.py reads these three).

    Part of the key under which rendered cards are reused for an unchanged chart (pipeline.py):
    a setting that starts to shape these cards must be added here.
    """
    return (bool(settings.car_t_available), tuple(sorted(a.lower() for a in settings.unavailable_agents)),
            settings.label_region)


def has_options_card(setting: str) -> bool:
    return setting not in NO_OPTIONS_SETTINGS


def placed_notices(state: ClinicalState, knowledge: Knowledge, setting: str) -> tuple[list[Notice], list[Notice], list[Notice]]:
    """(own cards, lines of the options card, lines of the state card) for this chart."""
    own: list[Notice] = []
    in_options: list[Notice] = []
    in_state: list[Notice] = []
    for n in decide_notices(state, knowledge, setting):
        if n.own_card and len(own) < OWN_CARD_LIMIT:
            own.append(n)
        elif n.home == "state" or not has_options_card(setting):
            in_state.append(n)
        else:
            in_options.append(n)
    return own, in_options, in_state


def patient_view_cards(state: ClinicalState, knowledge: Knowledge, settings: Settings) -> list[dict[str, Any]]:
    """For a myeloma patient: the options card (unless on therapy), then the notices that change
    what to do now; [] otherwise. The treatment-history card is rendered by state_card.py."""
    if not state.multiple_myeloma:
        return []
    rules = rules_for(knowledge)
    decision = rank_options(state, knowledge, settings)
    own, in_options, _ = placed_notices(state, knowledge, decision.setting)
    cards = []
    if has_options_card(decision.setting):
        cards.append(options_card(state, decision, rules, in_options))
    for notice in own:
        try:
            card = notice_card(notice, rules)
        except (KeyError, ValueError, TypeError, IndexError):  # one bad text must not cost the other cards
            log.exception("notice card failed", extra={"ruleId": f"notice/{notice.code}"})
            continue
        if card is not None:
            cards.append(card)
    return cards
