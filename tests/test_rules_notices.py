"""decide_notices and the notice texts: one test per CONTRACT notice code; where each notice goes.

Each notice's wording is checked on the card it would make (`notice_card`); whether it is shown as
a card of its own or as a line of the options / history card is tested separately (card economy).
"""

from __future__ import annotations

from datetime import date

from rules_builders import knowledge, settings, state

from cds_service.clinical.model import Cytogenetics, TransplantState
from cds_service.clinical.notices import decide_notices
from cds_service.clinical.options import rules_for
from cds_service.render.patient_view import notice_card, patient_view_cards
from cds_service.render.state_card import state_card

K = knowledge()


def codes(s):
    return [n.code for n in decide_notices(s, K)]


def cards_by_code(s):
    """Every decided notice rendered as the card it would make (its text, indicator, sources)."""
    return {n.code: notice_card(n, rules_for(K)) for n in decide_notices(s, K)}


def own_cards(s):
    return [c["extension"]["org.mmcds.card"]["code"] for c in patient_view_cards(s, K, settings())
            if c["extension"]["org.mmcds.card"]["kind"] == "notice"]


def all_text(s):
    cards = [state_card(s, K), *patient_view_cards(s, K, settings())]
    return "\n".join(c["summary"] + "\n" + c.get("detail", "") for c in cards)


def test_high_risk_cytogenetics_names_the_findings():
    s = state(lines=1, refractory=("lenalidomide",),
              cytogenetics=Cytogenetics(tested=True, high_risk=True, findings=["del(17p)", "1q-gain"], t11_14=False,
                                        high_risk_reasons=["del(17p) in 45 % of plasma cells"],
                                        risk_notes=["1q gain alone: not high risk by IMS/IMWG 2025"]))
    c = cards_by_code(s)["high-risk-cytogenetics"]
    assert "del(17p) in 45 %" in c["summary"] and "continuous" in c["summary"].lower()
    assert "IMS/IMWG 2025" in c["summary"] and len(c["summary"]) < 140
    assert "1q gain alone" in c["detail"] and "supersedes" in c["detail"]
    assert any("JCO-24-01893" in (src["url"] or "") for src in c["extension"]["org.mmcds.card"]["sources"])
    assert c["indicator"] == "warning"


def test_no_high_risk_notice_when_fish_unknown_or_standard():
    assert "high-risk-cytogenetics" not in codes(state(lines=1, cytogenetics=Cytogenetics()))
    assert "high-risk-cytogenetics" not in codes(state(lines=1, cytogenetics=Cytogenetics(tested=True, high_risk=False)))


def test_short_response_shows_the_months():
    s = state(lines=1, short_response=True, last_response_months=11.0)
    c = cards_by_code(s)["short-response"]
    assert "11 months" in c["summary"]


def test_plasma_cell_leukemia_is_critical_and_names_vdt_pace():
    c = cards_by_code(state(lines=1, plasma_cell_leukemia=True))["plasma-cell-leukemia"]
    assert c["indicator"] == "critical" and "VDT-PACE" in c["summary"]
    opts = patient_view_cards(state(lines=1, plasma_cell_leukemia=True), K, settings())[0]
    assert opts["indicator"] == "critical" and "Plasma cell leukaemia" in opts["detail"]


def test_extramedullary_disease():
    c = cards_by_code(state(lines=1, extramedullary=True))
    assert "extramedullary-disease" in c
    assert "Plasma cell leukaemia / extramedullary" in c["restage-at-relapse"]["detail"]
    assert "Extramedullary disease" in all_text(state(lines=1, extramedullary=True))  # a line, not a card
    assert "extramedullary-disease" not in own_cards(state(lines=1, extramedullary=True))


def test_salvage_asct_candidate_never_transplanted():
    t = TransplantState(prior_asct=False, transplant_eligible=True, salvage_asct="candidate")
    c = cards_by_code(state(lines=1, exposed=("lenalidomide",), transplant=t))["salvage-asct-candidate"]
    assert "never transplanted" in c["summary"]
    # an ASCT at relapse is then a first ASCT: the second-ASCT thresholds do not apply and are not shown
    assert "second ASCT" not in c["detail"] and "36 months" not in c["detail"] and "Myeloma X" not in c["detail"]
    after_first = TransplantState(prior_asct=True, asct_date=date(2021, 1, 1), months_asct_to_progression=48,
                                  maintenance_after_asct=True, salvage_asct="candidate")
    c = cards_by_code(state(lines=1, exposed=("lenalidomide",), transplant=after_first))["salvage-asct-candidate"]
    assert "18 months" in c["detail"] and "36 months" in c["detail"] and "24 months" in c["detail"]


def test_salvage_asct_discuss_shows_months_and_both_thresholds():
    t = TransplantState(prior_asct=True, asct_date=date(2021, 1, 1), months_asct_to_progression=26,
                        maintenance_after_asct=True, salvage_asct="discuss")
    c = cards_by_code(state(lines=1, exposed=("lenalidomide",), transplant=t))["salvage-asct-discuss"]
    assert "26 months" in c["summary"]
    assert "18 months" in c["detail"] and "36 months" in c["detail"] and "2021-01-01" in c["detail"]


def test_salvage_asct_not_recommended():
    t = TransplantState(prior_asct=True, months_asct_to_progression=12, salvage_asct="not-recommended")
    c = cards_by_code(state(lines=1, exposed=("lenalidomide",), transplant=t))["salvage-asct-not-recommended"]
    assert "12 months" in c["summary"] and "about 6 months" in c["detail"]


def test_salvage_asct_computed_from_thresholds_when_state_left_it_empty():
    def verdict(months, maint):
        t = TransplantState(prior_asct=True, months_asct_to_progression=months, maintenance_after_asct=maint)
        return [c for c in codes(state(lines=1, exposed=("lenalidomide",), transplant=t)) if c.startswith("salvage")]
    assert verdict(12, True) == ["salvage-asct-not-recommended"]
    assert verdict(20, True) == ["salvage-asct-discuss"]
    assert verdict(30, True) == ["salvage-asct-discuss"]
    assert verdict(30, False) == ["salvage-asct-candidate"]
    assert verdict(40, True) == ["salvage-asct-candidate"]


def test_clinical_trial_in_later_relapse_and_tcr_with_prognosis():
    assert "clinical-trial" in codes(state(lines=2, refractory=("lenalidomide",)))
    assert "clinical-trial" not in codes(state(lines=1, refractory=("lenalidomide",)))
    c = cards_by_code(state(lines=4, refractory=("lenalidomide", "bortezomib", "daratumumab")))["clinical-trial"]
    assert "5.6 months" in c["detail"]


def test_restage_at_relapse_only_when_relapsed():
    assert "restage-at-relapse" in codes(state(lines=1, refractory=("lenalidomide",)))
    assert "restage-at-relapse" not in codes(state(lines=1, relapsed=False, on_first_line=True))


def test_insufficient_data_lists_what_is_missing():
    s = state(lines=0, insufficient_data=True, missing=["treatment history"])
    c = cards_by_code(s)["insufficient-data"]
    assert "treatment history" in c["detail"]
    assert codes(s)[0] == "insufficient-data"
    assert own_cards(s) == []  # said on the options card, which is about what is missing
    assert "Treatment history insufficient" in patient_view_cards(s, K, settings())[0]["detail"]
    assert "treatment history" in state_card(s, K)["detail"]  # the missing data is listed once, there


def test_no_notices_for_non_myeloma():
    s = state(lines=1, plasma_cell_leukemia=True)
    s.multiple_myeloma = False
    assert decide_notices(s, K) == [] and patient_view_cards(s, K, settings()) == []


def test_salvage_asct_not_recommended_when_never_transplanted_and_ineligible():
    t = TransplantState(prior_asct=False, transplant_eligible=False, salvage_asct="not-recommended")
    s = state(lines=1, exposed=("lenalidomide",), transplant=t, age=78)
    c = cards_by_code(s)["salvage-asct-not-recommended"]
    assert "not transplant-eligible" in c["summary"] and "None" not in c["summary"] + c["detail"]
    opts = patient_view_cards(s, K, settings())[0]["extension"]["org.mmcds.card"]
    assert opts["avoid"][-1] == {"regimen": "salvage-ASCT", "reason": "not-transplant-eligible",
                                 "note": "never transplanted and not transplant-eligible"}


def test_high_risk_summary_stays_short_with_many_findings():
    reasons = ["del(17p) in 45 % of plasma cells", "TP53 mutation",
               "t(4;14) and t(14;16) and t(14;20) with 1q gain and del(1p32)", "biallelic del(1p32)",
               "β2-microglobulin 12.5 mg/L (2026-09-01) with creatinine 0.9 mg/dL"]
    for n in range(1, len(reasons) + 1):
        for rs in (reasons[:n], reasons[-n:]):
            s = state(lines=1, cytogenetics=Cytogenetics(tested=True, high_risk=True, findings=["del(17p)"],
                                                         high_risk_reasons=rs))
            c = cards_by_code(s)["high-risk-cytogenetics"]
            assert len(c["summary"]) < 140 and "IMS/IMWG 2025" in c["summary"]
            assert all(r in c["detail"] for r in rs)
