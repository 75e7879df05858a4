"""Specialist's patients around T-cell redirecting therapy (CAR-T, bispecifics), late 2026.

Each story is written once and encoded the ways charts really hold it (parametrised). The
assertions are what a myeloma specialist requires, with the source a clinician would name:
IMWG/EMN sequencing consensus 2025 (switch target after BCMA failure; CAR-T before a BCMA
bispecific; bridging belongs to the CAR-T line), the US/EU labels, MonumenTAL-1, STORM.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.specialist import builders as sb
from tests.specialist import stories
from tests.specialist.conftest import Checker, call
from tests.specialist.stories import elranatamab_failure, four_lines_then_cilta, tcr_non_penta

CAR_T_ENCODINGS = ["procedure", "administration", "statement"]
MED_ENCODINGS = ["statement", "request", "mar"]


@pytest.mark.parametrize("via", ["prefetch", "fhir"])
@pytest.mark.parametrize("car_t_enc", CAR_T_ENCODINGS)
@pytest.mark.parametrize("enc", ["statement", "request"])
def test_relapse_20_months_after_cilta_cel_switches_target(service: Any, ck: Checker, enc: str,
                                                           car_t_enc: str, via: str) -> None:
    """S01. Progression 20 months after cilta-cel (4th line): the CAR-T failed, BCMA is refractory.
    IMWG/EMN 2025: after progression on a BCMA-directed therapy switch target → talquetamab
    (MonumenTAL-1, responses after prior CAR-T); nothing BCMA-directed again; a teclistamab order
    is a same-target-after-failure finding."""
    p = four_lines_then_cilta(enc, car_t_enc, pd_after_car_t="2026-09-15")
    cards = call(service(), p.cds_request(), ck, via=via)
    state = sb.state_of(cards)
    agents = state.get("agents", {})
    ck(agents.get("ciltacabtagene-autoleucel") == "refractory", f"cilta-cel should be refractory (PD after CAR-T): {agents}")
    targets = state.get("targets", {})
    ck(targets.get("BCMA") == "refractory" and targets.get("GPRC5D") == "naive", f"targets: {targets}")
    ck(state.get("tripleClassRefractory") is True, "triple-class refractory (len, dara, carfilzomib)")
    ck(state.get("onTherapy") is False, f"onTherapy: {state.get('onTherapy')}")
    ck(state.get("priorLines") == 4, f"priorLines {state.get('priorLines')} != 4")
    opt = sb.options_of(cards)
    ck(opt.get("setting") == "triple-class-refractory", f"setting {opt.get('setting')}")
    listed, rk = sb.tiers(opt), sb.ranks(opt)
    ck(not (sb.BCMA_REGIMENS & set(listed)), f"BCMA-directed option after BCMA failure: {listed}")
    ck(listed.get("talquetamab") == "preferred", f"talquetamab not preferred after BCMA failure: {listed}")
    ahead = [r for r, k in rk.items() if k < rk.get("talquetamab", 999) and r != "clinical-trial"]
    ck(not ahead, f"ranked above talquetamab after BCMA failure: {ahead}")

    drafts = [sb.draft(p.pid, "d-tec", sb.rx(sb.TECLISTAMAB_PRODUCT, display="teclistamab-cqyv [Tecvayli]")),
              sb.draft(p.pid, "d-dex", sb.rx("dexamethasone"))]
    order_cards = call(service(), p.cds_request("order-select", drafts=drafts,
                                                selections=["MedicationRequest/d-tec"]), ck, via=via)
    same = sb.findings_with(order_cards, "same-target-after-failure")
    ck(same, f"teclistamab after cilta-cel failure: no same-target-after-failure finding: {sb.finding_codes(order_cards)}")
    ck(not same or ("teclistamab" in same[0].get("agents", []) and "MedicationRequest/d-tec" in same[0].get("orders", [])),
       f"finding should name teclistamab and the draft: {same}")
    ck.done()


@pytest.mark.parametrize("car_t_enc", CAR_T_ENCODINGS)
def test_stringent_cr_after_car_t_is_not_relapsed(service: Any, ck: Checker, car_t_enc: str) -> None:
    """S05. sCR 21 months after cilta-cel, no progression since: nothing to choose, BCMA only
    exposed (docs/clinical-rules.md: a completed line with no progression since is not-relapsed)."""
    p = four_lines_then_cilta("statement", car_t_enc, pd_after_car_t=None)
    p.observation({"text": "IMWG response assessment"}, "2026-10-01",
                  valueCodeableConcept={"text": "Stringent complete response (sCR), MRD negative 10-5"})
    cards = call(service(), p.cds_request(), ck)
    state = sb.state_of(cards)
    ck(state.get("agents", {}).get("ciltacabtagene-autoleucel") == "exposed", f"cilta-cel in sCR: {state.get('agents')}")
    ck(state.get("targets", {}).get("BCMA") == "exposed", f"targets: {state.get('targets')}")
    ck(state.get("onTherapy") is False, f"onTherapy: {state.get('onTherapy')}")
    opts = sb.of_kind(cards, "options")
    for o in opts:
        opt = sb.ext(o)
        ck(opt.get("setting") == "not-relapsed", f"setting {opt.get('setting')} in sCR after CAR-T")
        ck(not [x for x in opt.get("options", []) if x.get("tier") == "preferred"],
           f"next-line options preferred while in sCR: {sb.tiers(opt)}")
    ck.done()


@pytest.mark.parametrize("car_t_enc", ["procedure", "administration"])
@pytest.mark.parametrize("enc", ["statement", "request"])
def test_bridging_pvd_belongs_to_the_cilta_cel_line(service: Any, ck: Checker, enc: str, car_t_enc: str) -> None:
    """S02. PD on lenalidomide maintenance → apheresis → bridging PVd → lymphodepletion → cilta-cel
    → PD 2026-08. Bridging is part of the CAR-T line (IMWG line definition; IMWG 2025 consensus):
    2 prior lines, not 3. Bridging PVd ended 14 months before PD: pomalidomide, bortezomib exposed."""
    p = sb.Patient("sp-bridge", birth="1959-07-19")
    p.myeloma(onset="2020-02-01")
    sb.vrd_asct_len_maintenance(p, enc, dx="2020-02-01", pd_on_len="2024-03-10")
    p.add({"resourceType": "Procedure", "status": "completed", "performedDateTime": "2024-04-02",
           "code": {"text": "Leukapheresis for CAR-T cell manufacturing (ciltacabtagene autoleucel)"}})
    sb.course(p, ["pomalidomide", "bortezomib", "dexamethasone"], "2024-04-08", "2024-06-10", enc, every=21)
    for d in ("2024-06-24", "2024-06-25", "2024-06-26"):
        p.administration(sb.text_cc("fludarabine 30 mg/m2 IV (lymphodepletion)"), when=f"{d}T08:00:00Z")
        p.administration(sb.rx("cyclophosphamide", text="cyclophosphamide 300 mg/m2 IV (lymphodepletion)"),
                         when=f"{d}T09:00:00Z")
    sb.car_t(p, "ciltacabtagene-autoleucel", "2024-06-29", car_t_enc)
    p.disease_status("2026-08-12")
    cards = call(service(), p.cds_request(), ck)
    state = sb.state_of(cards)
    agents = state.get("agents", {})
    ck(state.get("priorLines") == 2, f"priorLines {state.get('priorLines')} != 2 (bridging is part of the CAR-T line)")
    ck(agents.get("pomalidomide") == "exposed" and agents.get("bortezomib") == "exposed", f"bridging agents: {agents}")
    ck(agents.get("cyclophosphamide") != "refractory", f"lymphodepletion is not a line: {agents}")
    ck(state.get("targets", {}).get("BCMA") == "refractory", f"targets: {state.get('targets')}")
    opt = sb.options_of(cards)
    ck(opt.get("setting") == "later-relapse", f"setting {opt.get('setting')}")
    ck(not (sb.BCMA_REGIMENS & set(sb.tiers(opt))), f"BCMA option after cilta-cel failure: {sb.tiers(opt)}")
    ck.done()


@pytest.mark.parametrize("brand", [False, True], ids=["atc", "brand-text"])
@pytest.mark.parametrize("enc", MED_ENCODINGS)
def test_progression_on_elranatamab(service: Any, ck: Checker, enc: str, brand: bool) -> None:
    """S08. PD on elranatamab (BCMA×CD3): BCMA refractory (60-day rule applies to bispecifics).
    IMWG/EMN 2025: switch target → talquetamab; no teclistamab, no BCMA CAR-T (same target);
    ordering teclistamab → same-target-after-failure."""
    p = elranatamab_failure(enc, brand)
    cards = call(service(), p.cds_request(), ck)
    state = sb.state_of(cards)
    ck(state.get("agents", {}).get("elranatamab") == "refractory", f"elranatamab: {state.get('agents')}")
    targets = state.get("targets", {})
    ck(targets.get("BCMA") == "refractory" and targets.get("GPRC5D") == "naive", f"targets: {targets}")
    opt = sb.options_of(cards)
    listed = sb.tiers(opt)
    ck(not (sb.BCMA_REGIMENS & set(listed)), f"BCMA-directed option after PD on elranatamab: {listed}")
    ck(listed.get("talquetamab") == "preferred", f"talquetamab not preferred: {listed}")

    drafts = [sb.draft(p.pid, "d-tec", sb.text_cc("Tecvayli (teclistamab-cqyv) step-up 0.06 mg/kg SC"))]
    order_cards = call(service(), p.cds_request("order-sign", drafts=drafts), ck)
    same = sb.findings_with(order_cards, "same-target-after-failure")
    ck(same and "teclistamab" in same[0].get("agents", []),
       f"teclistamab after elranatamab failure: findings {sb.finding_codes(order_cards)}")
    ck.done()


@pytest.mark.parametrize("enc", MED_ENCODINGS)
def test_tcr_without_car_t_access_ranks_bispecifics_above_sd(service: Any, ck: Checker, enc: str) -> None:
    """S09. TCR, not penta-refractory, 4 prior lines, institution without CAR-T: approved
    bispecifics (MajesTEC-1, MagnetisMM-3, MonumenTAL-1; US ≥ 4 prior lines) come before
    selinexor-dexamethasone, whose label (STORM) is penta-refractory disease — Sd not preferred.
    Withdrawn products (panobinostat in the US; belantamab monotherapy) are not offered. The
    MAMMOTH median OS of 5.6 months belongs to penta-refractory disease, not to this patient."""
    p = tcr_non_penta(enc)
    cards = call(service(CAR_T_AVAILABLE=False), p.cds_request(), ck)
    state = sb.state_of(cards)
    ck(state.get("tripleClassRefractory") is True and state.get("pentaRefractory") is False,
       f"TCR {state.get('tripleClassRefractory')}, penta {state.get('pentaRefractory')}")
    opt = sb.options_of(cards)
    ck(opt.get("setting") == "triple-class-refractory", f"setting {opt.get('setting')}")
    listed, rk = sb.tiers(opt), sb.ranks(opt)
    bispecifics = [r for r in ("teclistamab", "elranatamab", "talquetamab") if listed.get(r) == "preferred"]
    ck(bispecifics, f"no approved bispecific preferred without CAR-T: {listed}")
    ck(listed.get("Sd") != "preferred", f"Sd preferred in a non-penta-refractory patient: {listed}")
    for car_t in ("cilta-cel", "ide-cel"):
        ck(listed.get(car_t) in (None, "if-unavailable"), f"{car_t} tier {listed.get(car_t)} without CAR-T access")
    if "Sd" in rk:
        ck(all(rk[b] < rk["Sd"] for b in bispecifics), f"Sd ranked above a bispecific: {rk}")
    # withdrawn products are never offered (US labels): panobinostat NDA withdrawn Nov 2021;
    # belantamab monotherapy withdrawn 2022 (it returned only as BVd)
    ck("PanoVd" not in listed, f"PanoVd offered in the US although panobinostat was withdrawn: {listed}")
    ck("belantamab" not in listed, f"belantamab monotherapy offered although withdrawn: {listed}")
    # MAMMOTH (Gandhi, Leukemia 2019): 5.6 months is the penta-refractory subgroup's median OS
    text = "\n".join(sb.card_text(c) for c in cards)
    survival = r"[^\n]{0,80}(?:\bOS\b|survival)[^\n]{0,30}\b5\.6 months[^\n]{0,80}"
    quoted = [m.group(0) for m in re.finditer(survival, text, re.I) if "penta" not in m.group(0).lower()]
    ck(not quoted, f"penta-refractory median OS (5.6 months) quoted for a non-penta patient: {quoted[:1]}")
    ck.done()


@pytest.mark.parametrize("fish", ["coded", "report"])
def test_tcr_with_t11_14_offers_a_venetoclax_regimen(service: Any, ck: Checker, fish: str) -> None:
    """S10. TCR with t(11;14) in 70 % of plasma cells: a venetoclax regimen is offered in every
    setting (BELLINI subgroup; docs/clinical-rules.md), never VenVd without the translocation."""
    p = tcr_non_penta("statement")
    if fish == "coded":
        sb.fish_coded(p, "2018-01-20", {"t(11;14)": (True, 70.0), "del(17p)": (False, None)})
    else:
        sb.fish_text(p, "2018-01-20", "IGH/CCND1 fusion [t(11;14)] detected in 70% of CD138+ nuclei. "
                                      "TP53 deletion not detected.")
    cards = call(service(), p.cds_request(), ck)
    state = sb.state_of(cards)
    ck(state.get("cytogenetics", {}).get("t11_14") is True, f"cytogenetics: {state.get('cytogenetics')}")
    opt = sb.options_of(cards)
    ven = [r for r in sb.tiers(opt) if "venetoclax" in sb.regimen_agents(r)]
    ck(ven, f"no venetoclax regimen offered with t(11;14) in TCR: {sb.tiers(opt)}")
    ck.done()


@pytest.mark.parametrize("ecog_style", ["integer", "cc-text"])
def test_ecog3_tcr_car_t_and_bispecifics_not_preferred(service: Any, ck: Checker, ecog_style: str) -> None:
    """S12. TCR, age 68, ECOG 3: CAR-T and bispecific trials enrolled ECOG 0-1 (CARTITUDE-4,
    KarMMa-3, MajesTEC-1, MagnetisMM-3) — shown with the fitness caveat, not preferred."""
    p = tcr_non_penta("statement")
    p.resources[0]["birthDate"] = "1958-05-05"
    p.ecog("2026-09-12", 3, style=ecog_style)
    cards = call(service(), p.cds_request(), ck)
    state = sb.state_of(cards)
    ck(state.get("frail") is True, f"frail at ECOG 3: {state.get('frail')}")
    opt = sb.options_of(cards)
    listed = sb.tiers(opt)
    ck(listed, "no options for a relapsed TCR patient")
    for r in ("cilta-cel", "ide-cel", "teclistamab", "elranatamab", "talquetamab", "linvoseltamab", "Tec-Dara"):
        ck(listed.get(r) != "preferred", f"{r} preferred at ECOG 3 (trials: ECOG 0-1): {listed}")
    ck.done()


@pytest.mark.parametrize("enc", MED_ENCODINGS)
def test_progression_on_talquetamab_keeps_bcma_open(service: Any, ck: Checker, enc: str) -> None:
    """S23. PD on talquetamab (GPRC5D×CD3), BCMA never targeted, 4 prior lines: GPRC5D refractory,
    BCMA naive. Switch target the other way: a BCMA CAR-T or BCMA bispecific is preferred
    (CARTITUDE/KarMMa, MajesTEC-1, MagnetisMM-3); talquetamab is not offered again; a talquetamab
    order is flagged (same target / refractory agent), a teclistamab order is not same-target."""
    p = stories.talquetamab_failure(enc)
    cards = call(service(), p.cds_request(), ck)
    state = sb.state_of(cards)
    targets = state.get("targets", {})
    ck(state.get("agents", {}).get("talquetamab") == "refractory", f"talquetamab: {state.get('agents')}")
    ck(targets.get("GPRC5D") == "refractory" and targets.get("BCMA") == "naive", f"targets: {targets}")
    listed = sb.tiers(sb.options_of(cards))
    ck("talquetamab" not in listed, f"talquetamab offered after PD on it: {listed}")
    bcma_preferred = [r for r in ("cilta-cel", "ide-cel", "teclistamab", "elranatamab", "linvoseltamab")
                      if listed.get(r) == "preferred"]
    ck(bcma_preferred, f"no BCMA-directed therapy preferred after GPRC5D failure: {listed}")

    talq = [sb.draft(p.pid, "d-talq", sb.rx("talquetamab", text="Talvey 0.4 mg/kg SC"))]
    order_cards = call(service(), p.cds_request("order-select", drafts=talq), ck)
    ck({"same-target-after-failure", "refractory-agent-ordered"} & sb.finding_codes(order_cards),
       f"talquetamab after PD on talquetamab: findings {sb.finding_codes(order_cards)}")
    tec = [sb.draft(p.pid, "d-tec", sb.rx(sb.TECLISTAMAB_PRODUCT, display="teclistamab-cqyv [Tecvayli]"))]
    order_cards = call(service(), p.cds_request("order-select", drafts=tec), ck)
    ck("same-target-after-failure" not in sb.finding_codes(order_cards),
       "teclistamab (BCMA) flagged as same target after GPRC5D failure")
    ck.done()


@pytest.mark.parametrize("car_t_enc", ["statement", "procedure"])
def test_ide_cel_failure_at_third_line_us_and_eu(service: Any, ck: Checker, car_t_enc: str) -> None:
    """S24. PD 30 months after ide-cel (Abecma) given as 3rd line (KarMMa-3 population); not
    triple-class refractory (bortezomib only exposed). No BCMA option in any region — BVd neither,
    although its US label (≥ 2 prior lines) would fit. Talquetamab: on-label in the EU (≥ 3 prior
    therapies) and preferred there; off-label in the US (≥ 4 prior lines) → at most `other`."""
    request = stories.ide_cel_third_line("statement", car_t_enc).cds_request()
    us_cards = call(service(), request, ck)
    eu_cards = call(service(LABEL_REGION="EU"), request, ck)
    state = sb.state_of(us_cards)
    ck(state.get("priorLines") == 3, f"priorLines {state.get('priorLines')}")
    ck(state.get("agents", {}).get("idecabtagene-vicleucel") == "refractory", f"ide-cel: {state.get('agents')}")
    ck(state.get("targets", {}).get("BCMA") == "refractory", f"targets: {state.get('targets')}")
    us, eu = sb.tiers(sb.options_of(us_cards)), sb.tiers(sb.options_of(eu_cards))
    for region, listed in (("US", us), ("EU", eu)):
        ck(not (sb.BCMA_REGIMENS & set(listed)), f"{region}: BCMA-directed option after ide-cel failure: {listed}")
    ck(eu.get("talquetamab") == "preferred", f"EU: talquetamab (on-label ≥ 3 prior) not preferred: {eu}")
    ck(us.get("talquetamab") in (None, "other"), f"US: talquetamab tier {us.get('talquetamab')} at 3 prior lines "
                                                 "(US label ≥ 4)")
    ck.done()


@pytest.mark.parametrize("enc", ["statement", "request"])
def test_tcr_fit_car_t_before_bcma_bispecific(service: Any, ck: Checker, enc: str) -> None:
    """S25. TCR, BCMA-naive, ECOG 1, CAR-T available: both BCMA CAR-T and BCMA bispecifics are
    possible — CAR-T first (IMWG/EMN 2025: CAR-T before a BCMA bispecific; KarMMa-3 / CARTITUDE
    populations); Sd (penta-refractory label) is not preferred."""
    p = tcr_non_penta(enc)
    cards = call(service(), p.cds_request(), ck)
    opt = sb.options_of(cards)
    listed, rk = sb.tiers(opt), sb.ranks(opt)
    car_t = [r for r in ("cilta-cel", "ide-cel") if listed.get(r) == "preferred"]
    ck(car_t, f"no BCMA CAR-T preferred for a fit BCMA-naive TCR patient: {listed}")
    bispecific_ranks = [rk[r] for r in ("teclistamab", "elranatamab", "linvoseltamab") if r in rk]
    if car_t and bispecific_ranks:
        ck(min(rk[r] for r in car_t) < min(bispecific_ranks), f"a BCMA bispecific ranked above CAR-T: {rk}")
    ck(listed.get("Sd") != "preferred", f"Sd preferred in a non-penta-refractory patient: {listed}")
    ck.done()
