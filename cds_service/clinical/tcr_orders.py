"""Order checks around T-cell redirection and venetoclax (IMWG 2025, EMN 2025, venetoclax label).

- `same-target-after-failure`: a drafted agent against a target the disease progressed on
  (e.g. teclistamab after elranatamab, cilta-cel after ide-cel); alternatives switch target. The very
  drug the disease is refractory to keeps its `refractory-agent-ordered` finding instead.
- `tcr-infection-prophylaxis`: a bispecific or CAR-T drafted without antiviral and Pneumocystis
  prophylaxis in the record or the drafts (immunoglobulin replacement: named, IgG to be checked).
- `venetoclax-tls-precautions`: venetoclax drafted without an anti-hyperuricaemic (allopurinol,
  febuxostat, rasburicase); not raised when venetoclax itself is contraindicated (no t(11;14)).
- `alkylator-before-tcr`: bendamustine drafted while T-cell redirection is among the options.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from cds_service.clinical.findings import Finding, active_supportive
from cds_service.clinical.model import ClinicalState
from cds_service.clinical.rules import OptionsDecision, Rules
from cds_service.record.model import DraftOrder, PatientRecord


def tcr_findings(
    state: ClinicalState,
    drafts: list[DraftOrder],
    scope: list[DraftOrder],
    record: PatientRecord | None,
    rules: Rules,
    decision: OptionsDecision,
    eff: dict[str, str],
    alt_text: Callable[[list[str]], str],
    alternatives: Callable[[set[str], int], list[str]],
) -> Iterator[tuple[Finding, str]]:
    """(finding, dedup key) for the drafts in scope."""
    cat = rules.catalog
    checks = rules.checks.get("checks", {})
    cats = rules.checks.get("supportiveCategories", {})
    seq = rules.modifiers.get("sequencing", {})

    for d in scope:
        for agent in d.agents:
            tcr = cat.tcr_agents.get(agent)
            if tcr and tcr.target in decision.failed_targets and agent not in eff:  # the same drug: refractory-agent-ordered
                spec = checks.get("same-target-after-failure", {})
                same = {a for a, t in cat.tcr_agents.items() if t.target == tcr.target}
                alts = alternatives(same, int(spec.get("maxAlternatives", 3)))
                prior = decision.failed_targets[tcr.target].split(" (")[0]
                yield Finding("same-target-after-failure", [agent], [d.ref],
                              {"agent": agent, "target": tcr.target, "prior": prior,
                               "history": decision.failed_targets[tcr.target], "alternatives": alt_text(alts)},
                              [d], replace_with=alts), f"{agent}|{d.ref}"

    tcr_drafts = [(d, [a for a in d.agents if a in cat.tcr_agents and cat.tcr_agents[a].kind in ("bispecific", "CAR-T")])
                  for d in scope]
    tcr_drafts = [(d, al) for d, al in tcr_drafts if al]
    if tcr_drafts:
        antiviral = active_supportive(cats.get("zoster", "zoster-prophylaxis"), record, drafts)
        pjp = active_supportive(cats.get("pjp", "pjp-prophylaxis"), record, drafts)
        ig = active_supportive(cats.get("immunoglobulin", "immunoglobulin-replacement"), record, drafts)
        missing = [w for w, ok in (("antiviral (zoster) prophylaxis", antiviral), ("Pneumocystis prophylaxis", pjp)) if not ok]
        if missing:
            spec = checks.get("tcr-infection-prophylaxis", {})
            wanted = [s for s in spec.get("suggest") or []
                      if not (antiviral and "antiviral" in s.get("label", "").lower())
                      and not (pjp and "pneumocystis" in s.get("label", "").lower())]
            agents = sorted({a for _, al in tcr_drafts for a in al})
            igg = ("Immunoglobulin replacement is on record." if ig
                   else "No immunoglobulin replacement on record: check IgG.")
            yield Finding("tcr-infection-prophylaxis", agents, [d.ref for d, _ in tcr_drafts],
                          {"agent": ", ".join(agents), "missing": " and ".join(missing), "igg": igg},
                          [d for d, _ in tcr_drafts], supportive=wanted), "tcr-infection"

    ven = [d for d in scope if "venetoclax" in d.agents]
    if ven and state.cytogenetics.t11_14 is not False and not active_supportive(cats.get("tls", "tls-prophylaxis"),
                                                                                 record, drafts):
        spec = checks.get("venetoclax-tls-precautions", {})
        yield Finding("venetoclax-tls-precautions", ["venetoclax"], [d.ref for d in ven], {"agent": "venetoclax"},
                      ven, supportive=list(spec.get("suggest") or [])), "venetoclax-tls"

    alkyl = set(seq.get("alkylatorAgents", ["bendamustine"]))
    if decision.t_cell_redirection:
        for d in scope:
            for agent in d.agents:
                if agent in alkyl:
                    spec = checks.get("alkylator-before-tcr", {})
                    alts = alternatives(alkyl, int(spec.get("maxAlternatives", 3)))
                    yield Finding("alkylator-before-tcr", [agent], [d.ref],
                                  {"agent": agent, "tcr_options": ", ".join(decision.t_cell_redirection[:3]),
                                   "alternatives": alt_text(alts)}, [d], replace_with=alts), f"{agent}|{d.ref}"
