"""Advice that fits the patient: class-switch advice built from what the disease is not refractory to.

The knowledge files word class switches generically ("IMiD-refractory: a PI-based regimen with a
monoclonal antibody"). Said to a patient refractory to both proteasome inhibitors and
daratumumab, that advice is wrong. Here it is rebuilt from the patient's own agent statuses: the
drugs of each class the disease is not refractory to, the antibodies still open, and a plain
statement when a class is exhausted.
"""

from __future__ import annotations

import re

from cds_service.clinical.model import CLASS_AGENTS, ClinicalState

CLASS_WORDS = {"PI": "proteasome inhibitor", "IMiD": "IMiD", "anti-CD38": "anti-CD38 antibody"}
SWITCH_TO = {"IMiD": "PI", "PI": "IMiD"}
_CLASS_RULE_NOTE = re.compile(r"^\s*(PI|IMiD)-refractory:", re.I)


def open_agents(state: ClinicalState, refractory_for_choice: dict[str, str] | set[str], cls: str) -> list[str]:
    """Agents of a class the disease is not refractory to (nor treated as refractory for choosing)."""
    return [a for a in CLASS_AGENTS.get(cls, ()) if not state.is_refractory(a) and a not in refractory_for_choice]


def _antibody(state: ClinicalState, eff: dict[str, str] | set[str]) -> str:
    cd38 = open_agents(state, eff, "anti-CD38")
    refr = [a for a in CLASS_AGENTS["anti-CD38"] if state.is_refractory(a) or a in eff]
    if refr:
        return (f"; no anti-CD38 antibody ({', '.join(refr)}-refractory, cross-resistance): "
                "elotuzumab or a new class instead")
    if cd38:
        return f" with an anti-CD38 antibody ({' or '.join(cd38)})"
    return " with an antibody the disease has not failed"


def fitting_regimens(regimens: list[str], state: ClinicalState, regimen_specs: dict[str, dict]) -> list[str]:
    """Drop regimens that build on a class the disease failed (an anti-CD38 antibody after
    progression on one: cross-resistance), keeping the order."""
    cd38_failed = any(state.is_refractory(a) for a in CLASS_AGENTS["anti-CD38"]) \
        or state.classes.get("anti-CD38") == "refractory"
    out = []
    for r in regimens:
        comps = set((regimen_specs.get(r) or {}).get("components", []))
        if cd38_failed and comps & set(CLASS_AGENTS["anti-CD38"]):
            continue
        out.append(r)
    return out


def switch_advice(state: ClinicalState, eff: dict[str, str] | set[str], from_class: str) -> str:
    """'IMiD-refractory: switch to a proteasome inhibitor not failed (carfilzomib, ixazomib) with …'."""
    to = SWITCH_TO.get(from_class)
    if to is None:
        return ""
    ok = open_agents(state, eff, to)
    if not ok:
        refr = [a for a in CLASS_AGENTS[to] if state.is_refractory(a) or a in eff]
        return (f"{from_class}-refractory, and {', '.join(refr)}-refractory as well: choose among new classes "
                "(see the options for this patient: trial, anti-CD38 or T-cell redirecting therapy where open)")
    return (f"{from_class}-refractory: switch to a {CLASS_WORDS[to]} the disease is not refractory to "
            f"({', '.join(ok)}){_antibody(state, eff)}")


def fitted_note(note: str, state: ClinicalState, eff: dict[str, str] | set[str]) -> str:
    """A knowledge note, with a generic class-switch rule replaced by advice for this patient."""
    m = _CLASS_RULE_NOTE.match(note or "")
    if not m:
        return note
    cls = "PI" if m.group(1).upper() == "PI" else "IMiD"
    return switch_advice(state, eff, cls) + "."


def len_maintenance_pitfall(state: ClinicalState, eff: dict[str, str] | set[str], alternatives: str) -> str:
    """The named pitfall (progression on lenalidomide maintenance), with this patient's way out."""
    advice = switch_advice(state, eff, "IMiD")
    tail = f" Options for this patient: {alternatives}." if alternatives else ""
    return ("**Named pitfall:** no lenalidomide-based regimen after progression on lenalidomide maintenance; "
            f"{advice if advice else 'choose another class'}.{tail}")
