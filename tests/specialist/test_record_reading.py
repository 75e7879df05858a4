"""Specialist's patients whose chart is hard to read: FISH wording, clonal fractions, light-chain
disease, undated outside records.

Sources: IMS/IMWG 2025 high-risk definition (Avet-Loiseau, J Clin Oncol 2025: del(17p) ≥ 20 %
and/or TP53 mutation; t(4;14)/t(14;16)/t(14;20) only with 1q gain/amp and/or del(1p32));
IMWG 2016 response criteria (Kumar, Lancet Oncol 2016: FLC progression = increase of the
involved–uninvolved difference ≥ 25 % and > 10 mg/dL); IMWG line-of-therapy definition
(Rajkumar, Blood 2015).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.specialist import builders as sb
from tests.specialist.conftest import Checker, call
from tests.specialist.stories import len_maintenance_relapse

FISH_DAY = "2021-01-12"


def cyto_state(service: Any, p: sb.Patient, ck: Checker) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    cards = call(service(), p.cds_request(), ck)
    return sb.state_of(cards).get("cytogenetics", {}), cards


def shows_high_risk(cards: list[dict[str, Any]]) -> bool:
    """High risk reaches the clinician: a high-risk notice card, or the state card saying it
    (a notice may be folded into the state card when it does not change what to do now)."""
    state = sb.of_kind(cards, "state")
    text = sb.card_text(state[0]) if state else ""
    return "high-risk-cytogenetics" in sb.notice_codes(cards) or bool(re.search(r"high[- ]risk", text, re.I))


# ------------------------------------------------------------------------------ FISH
@pytest.mark.parametrize("encoding", ["report", "observation-text", "coded"])
def test_fish_list_not_detected_is_not_high_risk(service: Any, ck: Checker, encoding: str) -> None:
    """S14. 'TP53 deletion, 1q21 gain, t(4;14), t(14;16) not detected': the negation covers the
    whole list — tested, no abnormality, not high risk."""
    p = len_maintenance_relapse("statement", pid="sp-fish-neg")
    text = "TP53 deletion, 1q21 gain, t(4;14), t(14;16) not detected."
    if encoding == "coded":
        sb.fish_coded(p, FISH_DAY, {"del(17p)": (False, None), "1q-gain": (False, None), "t(4;14)": (False, None),
                                    "t(14;16)": (False, None)})
    else:
        sb.fish_text(p, FISH_DAY, text, as_report=encoding == "report")
    cyto, cards = cyto_state(service, p, ck)
    ck(cyto.get("tested") is True, f"tested {cyto.get('tested')}")
    ck(cyto.get("highRisk") is False, f"highRisk {cyto.get('highRisk')} for an all-negative panel")
    ck(cyto.get("findings") == [], f"findings {cyto.get('findings')} for an all-negative panel")
    ck("high-risk-cytogenetics" not in sb.notice_codes(cards), "high-risk notice for a negative panel")
    ck.done()


T414_TEXT = ("IGH/FGFR3 fusion [t(4;14)(p16;q32)] detected in 85% of nuclei. TP53 (17p13.1) deletion not detected. "
             "1q21 (CKS1B) gain not detected. CDKN2C (1p32) deletion not detected.")
T414_1Q_TEXT = ("IGH/FGFR3 fusion [t(4;14)(p16;q32)] detected in 85% of nuclei. TP53 (17p13.1) deletion not detected. "
                "1q21 (CKS1B) gain detected (3 copies) in 70% of nuclei. CDKN2C (1p32) deletion not detected.")


@pytest.mark.parametrize("with_1q", [False, True], ids=["t4-14-alone", "t4-14-with-1q-gain"])
@pytest.mark.parametrize("encoding", ["report", "coded"])
def test_t4_14_alone_is_reported_but_not_high_risk(service: Any, ck: Checker, encoding: str, with_1q: bool) -> None:
    """S15. IMS/IMWG 2025: t(4;14) alone is reported but no longer high risk; with 1q gain it is.
    The card names the definition applied (riskDefinition IMS-IMWG-2025)."""
    p = len_maintenance_relapse("statement", pid="sp-t414")
    if encoding == "coded":
        sb.fish_coded(p, FISH_DAY, {"t(4;14)": (True, 85.0), "del(17p)": (False, None),
                                    "1q-gain": (with_1q, 70.0 if with_1q else None), "del(1p)": (False, None)})
    else:
        sb.fish_text(p, FISH_DAY, T414_1Q_TEXT if with_1q else T414_TEXT)
    cyto, cards = cyto_state(service, p, ck)
    ck("t(4;14)" in (cyto.get("findings") or []), f"t(4;14) not reported: {cyto.get('findings')}")
    ck(cyto.get("riskDefinition") == "IMS-IMWG-2025", f"riskDefinition {cyto.get('riskDefinition')}")
    ck(cyto.get("highRisk") is with_1q, f"highRisk {cyto.get('highRisk')} for t(4;14)"
                                        f"{' + 1q gain' if with_1q else ' alone'} (IMS/IMWG 2025)")
    if with_1q:
        ck(shows_high_risk(cards), "t(4;14) + 1q gain: no card says high risk")
    else:
        ck("high-risk-cytogenetics" not in sb.notice_codes(cards), "high-risk notice for t(4;14) alone")
    ck.done()


@pytest.mark.parametrize("pct", [10, 60])
@pytest.mark.parametrize("encoding", ["report", "coded"])
def test_del17p_clonal_fraction_decides_high_risk(service: Any, ck: Checker, encoding: str, pct: int) -> None:
    """S16. del(17p) in 10 % of plasma cells: below the IMS/IMWG 2025 threshold (≥ 20 %) → not high
    risk; in 60 % → high risk, with del(17p) among the findings."""
    p = len_maintenance_relapse("statement", pid="sp-17p")
    if encoding == "coded":
        sb.fish_coded(p, FISH_DAY, {"del(17p)": (True, float(pct)), "t(4;14)": (False, None),
                                    "t(14;16)": (False, None), "1q-gain": (False, None), "del(1p)": (False, None)})
    else:
        sb.fish_text(p, FISH_DAY, f"TP53 (17p13.1) deletion detected in {pct}% of CD138+ plasma cells. "
                                  "IGH/FGFR3 and IGH/MAF fusions not detected. 1q21 gain not detected. "
                                  "1p32 deletion not detected.")
    cyto, cards = cyto_state(service, p, ck)
    high = pct >= 20
    ck(cyto.get("highRisk") is high, f"highRisk {cyto.get('highRisk')} for del(17p) in {pct}% (threshold 20%)")
    if high:
        ck("del(17p)" in (cyto.get("findings") or []), f"del(17p) 60% not in findings: {cyto.get('findings')}")
        ck(shows_high_risk(cards), "del(17p) 60%: no card says high risk")
    else:
        ck("high-risk-cytogenetics" not in sb.notice_codes(cards), "high-risk notice for del(17p) in 10%")
    ck.done()


# ------------------------------------------------------------------------------ light chains
def kappa_lc_patient(unit: str, lambda_reported: bool) -> sb.Patient:
    """κ light-chain myeloma; VRd → ASCT → lenalidomide maintenance stopped for toxicity 2025-03-01;
    no measurable serum M-protein; κ rises from 12 to 130 and 170 mg/L (λ 10 mg/L): dFLC up from
    2 to 120 and 160 mg/L (> 10 mg/dL, ≥ 25 %) on two consecutive assessments → IMWG progression."""
    p = sb.Patient("sp-kappa", birth="1964-10-10")
    p.myeloma(onset="2021-01-10", text="Light chain multiple myeloma, kappa")
    sb.vrd_asct_len_maintenance(p, "statement", pd_on_len=None, len_end="2025-03-01")
    for day, kappa in (("2024-06-03", 12.0), ("2025-06-02", 14.0), ("2026-06-01", 60.0), ("2026-08-03", 130.0),
                       ("2026-09-07", 170.0)):
        sb.flc(p, day, "kappa", kappa, unit)
        if lambda_reported:
            sb.flc(p, day, "lambda", 10.0, unit)
    return p


@pytest.mark.parametrize("unit", ["mg/L", "mg/dL"])
def test_kappa_light_chain_progression_by_flc(service: Any, ck: Checker, unit: str) -> None:
    """S17a. κ and λ both reported: IMWG FLC progression → first relapse, lenalidomide stopped for
    toxicity 17 months before → lenalidomide-sensitive setting."""
    p = kappa_lc_patient(unit, lambda_reported=True)
    cards = call(service(), p.cds_request(), ck)
    state = sb.state_of(cards)
    ck(state.get("priorLines") == 1, f"priorLines {state.get('priorLines')}")
    ck(state.get("agents", {}).get("lenalidomide") == "exposed", f"lenalidomide {state.get('agents')}")
    opt = sb.options_of(cards)
    ck(opt.get("setting") == "first-relapse-len-sensitive",
       f"setting {opt.get('setting')}: dFLC rose > 10 mg/dL on two assessments")
    ck.done()


@pytest.mark.parametrize("unit", ["mg/L", "mg/dL"])
def test_kappa_without_lambda_says_progression_cannot_be_judged(service: Any, ck: Checker, unit: str) -> None:
    """S17b. Only κ reported: the involved–uninvolved difference cannot be computed, so
    progression cannot be judged from FLC — say so (docs/clinical-rules.md), do not invent a relapse."""
    p = kappa_lc_patient(unit, lambda_reported=False)
    cards = call(service(), p.cds_request(), ck)
    opts = [sb.ext(c) for c in sb.of_kind(cards, "options")]
    relapse_settings = [o.get("setting") for o in opts if str(o.get("setting", "")).endswith(("relapse", "-sensitive",
                                                                                               "-refractory", "-cd38"))]
    ck(not relapse_settings, f"relapse setting {relapse_settings} from κ alone")
    text = "\n".join(sb.card_text(c) for c in cards)
    says = re.search(r"lambda|λ", text, re.I) and re.search(r"light chain|FLC", text, re.I)
    ck(says or "insufficient-data" in sb.notice_codes(cards),
       "no card says that FLC progression cannot be judged without λ")
    ck.done()


@pytest.mark.parametrize("unit", ["mg/L", "mg/dL"])
def test_kappa_only_one_line_summaries_do_not_say_not_relapsed(service: Any, ck: Checker, unit: str) -> None:
    """S17c. κ rising without λ: the one-line summaries (what a busy clinician reads) say that
    progression cannot be judged from FLC because λ is missing — never a plain "not relapsed". With
    λ reported the patient has relapsed, and no summary speaks of missing λ."""
    cards = call(service(), kappa_lc_patient(unit, lambda_reported=False).cds_request(), ck)
    summaries = [c.get("summary", "") for c in cards]
    ck(not any(re.search(r"not relapsed", s, re.I) for s in summaries), f"'not relapsed' in {summaries}")
    ck(any(re.search(r"cannot be judged", s) and "λ missing" in s for s in summaries),
       f"no summary says FLC progression cannot be judged (λ missing): {summaries}")
    with_lambda = call(service(), kappa_lc_patient(unit, lambda_reported=True).cds_request(), ck)
    ck(not any("λ missing" in c.get("summary", "") for c in with_lambda), "λ reported, yet a summary says it is missing")
    ck.done()


# ------------------------------------------------------------------------------ undated records
@pytest.mark.parametrize("asserted", ["2021-05-15", "2022-03-01"], ids=["asserted-during-induction",
                                                                          "asserted-after-maintenance-began"])
def test_undated_vrd_statements_do_not_split_the_line(service: Any, ck: Checker, asserted: str) -> None:
    """S18. VRd induction reconciled from an outside record: MedicationStatements with only
    dateAsserted (no effective date). The course joins the line it belongs to (VRd → ASCT → R is
    one line, IMWG), the line count stays 1, and the state card says it is uncertain."""
    p = sb.Patient("sp-undated", birth="1966-01-20", gender="male")
    p.myeloma(onset="2021-01-10")
    for agent in ("bortezomib", "lenalidomide", "dexamethasone"):
        p.statement(sb.concept(agent), None, status="completed", dateAsserted=asserted)
    p.administration(sb.rx("melphalan", text="melphalan 200 mg/m2 IV"), when="2021-06-18T08:00:00Z")
    p.asct("2021-06-20")
    sb.course(p, ["lenalidomide"], "2021-09-01", "2026-08-17", "statement", pd=True)
    p.disease_status("2026-08-20")
    cards = call(service(), p.cds_request(), ck)
    state = sb.state_of(cards)
    ck(state.get("priorLines") == 1, f"priorLines {state.get('priorLines')}: undated induction opened a line")
    ck(state.get("agents", {}).get("lenalidomide") == "refractory", f"agents {state.get('agents')}")
    st = sb.of_kind(cards, "state")
    text = sb.card_text(st[0]) if st else ""
    ck(re.search(r"uncertain|undated|no (usable )?(start )?date", text, re.I),
       "state card does not say the line count is uncertain (undated courses)")
    ck.done()
