"""Specialist's patients at first relapse, or already on their next line, late 2026.

Sources a clinician would name: IMWG line-of-therapy and response criteria (Rajkumar 2011/2015,
Kumar 2016); CARTITUDE-4 and the cilta-cel US/EU labels (≥ 1 prior line, lenalidomide-refractory);
MajesTEC-3 and the Tec-Dara US label (March 2026; anti-CD38-refractory patients excluded);
DREAMM-7/-8 and the BVd/BPd labels (US BVd ≥ 2 prior lines, BPd not approved; EU BVd ≥ 1, BPd
≥ 1 incl. lenalidomide); EHA-EMN 2025 and docs/clinical-rules.md; fitness: ECOG ≥ 2 or > 75 years.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.specialist import builders as sb
from tests.specialist.conftest import Checker, call
from tests.specialist.stories import len_maintenance_relapse

MED_ENCODINGS = ["statement", "request", "mar"]


def no_options_card(cards: list[dict[str, Any]], ck: Checker, why: str) -> None:
    opts = [sb.ext(c) for c in sb.of_kind(cards, "options")]
    ck(not opts, f"{why}: options card shown (setting {[o.get('setting') for o in opts]}, "
                 f"options {[sb.tiers(o) for o in opts]})")


# --------------------------------------------------------------------------- on therapy
@pytest.mark.parametrize("via", ["prefetch", "fhir"])
@pytest.mark.parametrize("enc", MED_ENCODINGS)
def test_two_months_into_dkd_and_responding(service: Any, ck: Checker, enc: str, via: str) -> None:
    """S03. PD on lenalidomide maintenance 2026-08-20, DKd since 2026-09-01, M-protein falling:
    the patient is on therapy (docs/clinical-rules.md) — no next-line card, DKd not offered as if new;
    continuing the DKd orders is not 'refractory agent ordered'."""
    p = sb.Patient("sp-dkd", birth="1961-09-09", gender="male")
    p.myeloma(onset="2021-01-10")
    sb.vrd_asct_len_maintenance(p, enc)
    for day, val in (("2022-06-01", 0.2), ("2024-06-01", 0.2), ("2026-07-01", 0.7), ("2026-08-15", 1.2),
                     ("2026-10-01", 0.6), ("2026-10-27", 0.3)):
        p.m_protein(day, val)
    sb.course(p, ["daratumumab", "carfilzomib", "dexamethasone"], "2026-09-01", None, enc)
    cards = call(service(), p.cds_request(), ck, via=via)
    state = sb.state_of(cards)
    ck(state.get("onTherapy") is True, f"onTherapy {state.get('onTherapy')} two months into responding DKd")
    ck(state.get("agents", {}).get("lenalidomide") == "refractory", f"agents {state.get('agents')}")
    ck(state.get("agents", {}).get("carfilzomib") == "exposed" and state.get("agents", {}).get("daratumumab") == "exposed",
       f"DKd running and responding is exposed, not refractory: {state.get('agents')}")
    no_options_card(cards, ck, "on DKd and responding")
    for c in sb.of_kind(cards, "options"):
        ck("DKd" not in sb.tiers(sb.ext(c)), "DKd offered as a next line while the patient is on DKd")

    drafts = [sb.draft(p.pid, "d-k", sb.rx("carfilzomib")), sb.draft(p.pid, "d-d", sb.rx("2375141")),
              sb.draft(p.pid, "d-dex", sb.rx("dexamethasone"))]
    order_cards = call(service(), p.cds_request("order-select", drafts=drafts), ck, via=via)
    ck("refractory-agent-ordered" not in sb.finding_codes(order_cards),
       f"cycle 3 of a responding DKd flagged refractory: {sb.finding_codes(order_cards)}")
    ck.done()


@pytest.mark.parametrize("enc", ["request", "statement"])
def test_drd_restarted_after_planned_holiday_with_lenalidomide_on_hold(service: Any, ck: Checker, enc: str) -> None:
    """S04. Frontline DRd 2019-2024, stopped as planned (sustained MRD-negative CR); biochemical
    relapse 2026-05 → DRd restarted 2026-06-01 (IMWG: a restart after a planned treatment-free
    interval is a new line), responding; lenalidomide held this week for neutropenia (on-hold).
    On therapy, not relapsing; progression came 2 years off therapy → lenalidomide and
    daratumumab exposed, not refractory; resuming lenalidomide is not a refractory-agent order."""
    p = sb.Patient("sp-drd", birth="1950-12-12")
    p.myeloma(onset="2019-02-15")
    agents = ["daratumumab", "lenalidomide", "dexamethasone"]
    sb.course(p, agents, "2019-03-01", "2024-02-26", "statement" if enc == "statement" else "request")
    for day, val in (("2023-12-01", 0.1), ("2025-06-01", 0.1), ("2026-03-02", 0.4), ("2026-05-10", 0.8),
                     ("2026-08-01", 0.4), ("2026-10-20", 0.2)):
        p.m_protein(day, val)
    p.disease_status("2026-05-15")
    if enc == "request":
        sb.course(p, ["daratumumab", "dexamethasone"], "2026-06-01", None, "request")
        sb.course(p, ["lenalidomide"], "2026-06-01", "2026-10-01", "request")
        p.request(sb.rx("1429367"), "2026-10-05", status="on-hold", bounds=("2026-10-05", "2026-11-01"),
                  course="continuous", reason_text="Held for neutropenia (ANC 0.8), resume when ANC > 1.0")
    else:
        sb.course(p, ["daratumumab", "dexamethasone"], "2026-06-01", None, "statement")
        p.statement(sb.rx("lenalidomide", text="Revlimid 25 mg days 1-21"), "2026-06-01", None, status="on-hold",
                    reason_text="Held for neutropenia")
    cards = call(service(), p.cds_request(), ck)
    state = sb.state_of(cards)
    agents_state = state.get("agents", {})
    ck(state.get("onTherapy") is True, f"onTherapy {state.get('onTherapy')} on restarted DRd (lenalidomide on hold)")
    ck(agents_state.get("lenalidomide") == "exposed", f"lenalidomide {agents_state.get('lenalidomide')}: PD came "
                                                      "2 years after a planned stop")
    ck(agents_state.get("daratumumab") == "exposed", f"daratumumab {agents_state.get('daratumumab')}")
    no_options_card(cards, ck, "on restarted DRd and responding")

    drafts = [sb.draft(p.pid, "d-len", sb.rx("1429367"))]
    order_cards = call(service(), p.cds_request("order-select", drafts=drafts), ck)
    ck("refractory-agent-ordered" not in sb.finding_codes(order_cards),
       f"resuming lenalidomide flagged refractory: {sb.finding_codes(order_cards)}")
    ck.done()


# --------------------------------------------------------------------------- first relapse
@pytest.mark.parametrize("brand", [False, True], ids=["rxnorm", "brand-text"])
@pytest.mark.parametrize("enc", MED_ENCODINGS)
def test_first_relapse_on_dara_len_maintenance_after_dvrd(service: Any, ck: Checker, enc: str, brand: bool) -> None:
    """S06. D-VRd → ASCT → D-R maintenance (PERSEUS-like), PD on maintenance: lenalidomide- and
    daratumumab-refractory, bortezomib exposed. Cilta-cel is on-label (US: ≥ 1 prior line, PI +
    IMiD, lenalidomide-refractory; CARTITUDE-4). Tec-Dara is NOT offered: MajesTEC-3 excluded
    anti-CD38-refractory patients. PI-based options without daratumumab (docs/clinical-rules.md)."""
    p = sb.Patient("sp-perseus", birth="1963-03-03")
    p.myeloma(onset="2021-01-10")
    sb.vrd_asct_len_maintenance(p, enc, dara=True, pd_on_len="2026-09-01", brand=brand)
    p.ecog("2026-09-05", 1)
    cards = call(service(), p.cds_request(), ck)
    state = sb.state_of(cards)
    agents_state = state.get("agents", {})
    ck(state.get("priorLines") == 1, f"priorLines {state.get('priorLines')}")
    ck(agents_state.get("lenalidomide") == "refractory" and agents_state.get("daratumumab") == "refractory",
       f"agents {agents_state}")
    ck(agents_state.get("bortezomib") == "exposed", f"bortezomib {agents_state.get('bortezomib')}")
    opt = sb.options_of(cards)
    listed = sb.tiers(opt)
    ck(opt.get("setting") == "first-relapse-after-anti-cd38", f"setting {opt.get('setting')}")
    ck(listed.get("cilta-cel") == "preferred", f"cilta-cel not preferred (US label, CARTITUDE-4): {listed}")
    ck("Tec-Dara" not in listed, f"Tec-Dara offered to an anti-CD38-refractory patient (MajesTEC-3 excluded): {listed}")
    pi_based = [r for r in ("Kd", "KPd", "PVd", "VCd", "SVd", "EloVd") if r in listed]
    ck(pi_based, f"no PI-based option without daratumumab: {listed}")
    anti_cd38_preferred = [r for r, t in listed.items() if t == "preferred"
                           and sb.regimen_agents(r) & {"daratumumab", "isatuximab"}]
    ck(not anti_cd38_preferred, f"anti-CD38 regimen preferred after PD on daratumumab: {anti_cd38_preferred}")
    len_preferred = [r for r, t in listed.items() if t == "preferred" and "lenalidomide" in sb.regimen_agents(r)]
    ck(not len_preferred, f"lenalidomide regimen preferred after PD on lenalidomide: {len_preferred}")
    ck.done()


@pytest.mark.parametrize("enc", ["statement", "mar"])
def test_first_relapse_after_dara_in_induction_only(service: Any, ck: Checker, enc: str) -> None:
    """S27. D-VRd induction → ASCT → lenalidomide maintenance alone, PD on lenalidomide 5 years
    after the last daratumumab: daratumumab exposed, NOT refractory. MajesTEC-3 excluded only
    anti-CD38-refractory patients → Tec-Dara stays available (US label ≥ 1 prior line); cilta-cel
    preferred (CARTITUDE-4); anti-CD38 regimens (DKd, IsaKd) stay available; lenalidomide avoided."""
    p = sb.Patient("sp-dara-ind", birth="1962-12-01")
    p.myeloma(onset="2021-01-10")
    sb.vrd_asct_len_maintenance(p, enc, dara=True, dara_maintenance=False, pd_on_len="2026-08-20")
    p.ecog("2026-08-25", 1)
    cards = call(service(), p.cds_request(), ck)
    state = sb.state_of(cards)
    agents_state = state.get("agents", {})
    ck(agents_state.get("daratumumab") == "exposed", f"daratumumab {agents_state.get('daratumumab')} "
                                                     "(last dose 5 years before PD)")
    ck(agents_state.get("lenalidomide") == "refractory", f"lenalidomide {agents_state.get('lenalidomide')}")
    ck(state.get("classes", {}).get("anti-CD38") == "exposed", f"classes {state.get('classes')}")
    opt = sb.options_of(cards)
    listed = sb.tiers(opt)
    ck(opt.get("setting") == "first-relapse-len-refractory", f"setting {opt.get('setting')}")
    ck(listed.get("cilta-cel") == "preferred", f"cilta-cel not preferred: {listed}")
    ck(listed.get("Tec-Dara") == "preferred", f"Tec-Dara not preferred for an anti-CD38-exposed, not refractory "
                                              f"patient: {listed}")
    ck("DKd" in listed or "IsaKd" in listed, f"anti-CD38 regimens withdrawn although daratumumab is only exposed: {listed}")
    ck("DRd" in sb.avoid_of(opt), f"DRd not avoided after PD on lenalidomide: {sb.avoid_of(opt)}")
    ck.done()


@pytest.mark.parametrize("enc", ["statement", "request"])
def test_first_relapse_on_len_maintenance_us_and_eu_labels(service: Any, ck: Checker, enc: str) -> None:
    """S07. PD on lenalidomide maintenance, anti-CD38 naive, ECOG 1. US: cilta-cel (CARTITUDE-4)
    and Tec-Dara (MajesTEC-3, US label Mar 2026) preferred; DKd, IsaKd, PVd listed; BVd is US-labelled
    only from 2 prior lines (not preferred), BPd was never approved in the US (not listed).
    EU (LABEL_REGION=EU): BVd (≥ 1 prior) and BPd (≥ 1 prior incl. lenalidomide) are on-label."""
    request = len_maintenance_relapse(enc).cds_request()
    us_cards = call(service(), request, ck)
    eu_cards = call(service(LABEL_REGION="EU"), request, ck)
    us, eu = sb.options_of(us_cards), sb.options_of(eu_cards)
    us_t, eu_t = sb.tiers(us), sb.tiers(eu)
    for opt in (us, eu):
        ck(opt.get("setting") == "first-relapse-len-refractory", f"setting {opt.get('setting')}")
        ck("DRd" in sb.avoid_of(opt), f"DRd not in avoid after PD on lenalidomide: {sb.avoid_of(opt)}")
    ck(us_t.get("cilta-cel") == "preferred", f"US: cilta-cel not preferred: {us_t}")
    ck(us_t.get("Tec-Dara") == "preferred", f"US: Tec-Dara not preferred: {us_t}")
    for r in ("DKd", "IsaKd", "PVd"):
        ck(r in us_t, f"US: {r} missing: {us_t}")
    ck(us_t.get("BVd") in (None, "other"), f"US: BVd tier {us_t.get('BVd')} at 1 prior line (label ≥ 2)")
    ck("BPd" not in us_t, f"US: BPd offered though never approved in the US: {us_t}")
    ck(eu_t.get("cilta-cel") == "preferred", f"EU: cilta-cel not preferred: {eu_t}")
    ck("BVd" in eu_t, f"EU: BVd (on-label from 1 prior line) missing: {eu_t}")
    ck("BPd" in eu_t, f"EU: BPd (on-label, prior lenalidomide) missing: {eu_t}")
    ck(us_t != eu_t, "LABEL_REGION changes nothing")
    ck.done()


@pytest.mark.parametrize("ecog", [("2", "integer"), ("2", "cc-text"), ("1", "integer")],
                         ids=["ecog2-int", "ecog2-text", "ecog1-age-only"])
@pytest.mark.parametrize("enc", ["statement", "request"])
def test_frail_81_year_old_first_relapse(service: Any, ck: Checker, enc: str, ecog: tuple[str, str]) -> None:
    """S11. 81 years, VRd-lite then lenalidomide maintenance (no ASCT), PD on lenalidomide. Frail
    or > 75 (IMWG frailty; docs/clinical-rules.md): carfilzomib triplets not preferred; gentler options
    (PVd, DVd, IPd...) preferred; no salvage ASCT."""
    p = sb.Patient("sp-81", birth="1945-06-01")
    p.myeloma(onset="2022-01-05")
    sb.course(p, ["bortezomib", "lenalidomide", "dexamethasone"], "2022-01-15", "2022-09-30", enc, every=35)
    sb.course(p, ["lenalidomide"], "2022-10-15", "2026-09-01", enc, pd=True)
    p.disease_status("2026-09-04")
    p.ecog("2026-09-04", int(ecog[0]), style=ecog[1])
    cards = call(service(), p.cds_request(), ck)
    state = sb.state_of(cards)
    if ecog[0] == "2":
        ck(state.get("frail") is True, f"frail {state.get('frail')} at ECOG 2")
    ck(state.get("transplant", {}).get("salvageASCT") in (None, "not-recommended"),
       f"salvage ASCT {state.get('transplant', {}).get('salvageASCT')} at 81")
    opt = sb.options_of(cards)
    listed = sb.tiers(opt)
    ck(opt.get("setting") == "first-relapse-len-refractory", f"setting {opt.get('setting')}")
    preferred = {r for r, t in listed.items() if t == "preferred"}
    ck(not (preferred & sb.CARFILZOMIB_TRIPLETS), f"carfilzomib triplet preferred at 81: {sorted(preferred)}")
    ck(preferred - {"clinical-trial"}, f"nothing preferred for an 81-year-old at first relapse: {listed}")
    ck.done()


@pytest.mark.parametrize("asct_code", ["snomed", "cpt"])
def test_83_year_old_ecog3_salvage_asct_not_recommended(service: Any, ck: Checker, asct_code: str) -> None:
    """S13. 83 years, ECOG 3; ASCT at 72 in 2015 without maintenance, first PD 2026-09 (11 years):
    the remission was long, but salvage ASCT is not-recommended at ECOG ≥ 3 or age > 75
    (docs/clinical-rules.md; EHA-EMN 2025)."""
    p = sb.Patient("sp-83", birth="1943-03-01", gender="male")
    p.myeloma(onset="2015-01-10")
    sb.course(p, ["bortezomib", "cyclophosphamide", "dexamethasone"], "2015-01-20", "2015-04-30", "request", every=21)
    p.administration(sb.rx("melphalan", text="melphalan 140 mg/m2 IV"), when="2015-06-18T08:00:00Z")
    if asct_code == "snomed":
        p.asct("2015-06-20")
    else:
        p.procedure("38241", sb.rb.CPT, "2015-06-20", "Hematopoietic progenitor cell (HPC); autologous transplantation")
    p.disease_status("2026-09-10")
    p.ecog("2026-09-10", 3)
    cards = call(service(), p.cds_request(), ck)
    state = sb.state_of(cards)
    tx = state.get("transplant", {})
    ck(tx.get("priorASCT") is True, f"prior ASCT not read: {tx}")
    ck(tx.get("salvageASCT") == "not-recommended", f"salvage ASCT {tx.get('salvageASCT')} at 83 with ECOG 3")
    notices = sb.notice_codes(cards)
    ck(not ({"salvage-asct-candidate", "salvage-asct-discuss"} & notices), f"salvage ASCT offered: {notices}")
    ck(state.get("frail") is True, f"frail {state.get('frail')} at ECOG 3")
    ck.done()
