"""Specialist's orders: what a pharmacist-minded myeloma specialist expects at order-select/-sign.

Sources: IMWG (Costa, Leukemia 2025) and EMN (van de Donk, Lancet Haematol 2025) consensus on
T-cell redirecting therapy — antiviral and Pneumocystis prophylaxis with bispecifics, avoid
bendamustine/high-dose alkylators before T-cell redirection; venetoclax tumour lysis precautions
(venetoclax label; BELLINI); IMWG 2021 recommendations (Moreau, Lancet Oncol 2021) pitfall "lenalidomide after progression on lenalidomide
maintenance"; a suggestion must leave a regimen a clinician would sign (never two PIs).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.specialist import builders as sb
from tests.specialist.conftest import Checker, call
from tests.specialist.stories import len_maintenance_relapse, tcr_non_penta

BISPECIFIC_DRAFTS = {
    "tec-rxnorm": ("teclistamab", lambda: sb.rx(sb.TECLISTAMAB_PRODUCT, display="teclistamab-cqyv [Tecvayli]")),
    "tec-brand-text": ("teclistamab", lambda: sb.text_cc("Tecvayli (teclistamab-cqyv) 0.06 mg/kg SC step-up day 1")),
    "talq-rxnorm": ("talquetamab", lambda: sb.rx("talquetamab", text="talquetamab-tgvs 0.01 mg/kg SC step-up")),
}


@pytest.mark.parametrize("prophylaxis", [False, True], ids=["no-prophylaxis", "valacyclovir-and-tmp-smx"])
@pytest.mark.parametrize("drug", list(BISPECIFIC_DRAFTS))
def test_bispecific_without_infection_prophylaxis(service: Any, ck: Checker, drug: str, prophylaxis: bool) -> None:
    """S19. TCR patient, a bispecific step-up dose drafted. Without an antiviral and PJP prophylaxis
    on the chart or in the basket → tcr-infection-prophylaxis; with valacyclovir and TMP-SMX active
    → no such finding."""
    p = tcr_non_penta("statement", pid="sp-bisp")
    if prophylaxis:
        p.statement(sb.text_cc("valacyclovir 500 mg tablet, 1 tab PO BID"), "2026-10-20", None, status="active")
        p.statement(sb.text_cc("sulfamethoxazole-trimethoprim 800-160 mg (Bactrim DS) PO three times weekly"),
                    "2026-10-20", None, status="active")
    agent, med = BISPECIFIC_DRAFTS[drug]
    drafts = [sb.draft(p.pid, "d-bisp", med()), sb.draft(p.pid, "d-dex", sb.text_cc("dexamethasone 16 mg IV premedication"))]
    cards = call(service(), p.cds_request("order-select", drafts=drafts, selections=["MedicationRequest/d-bisp"]), ck)
    found = sb.findings_with(cards, "tcr-infection-prophylaxis")
    if prophylaxis:
        ck(not found, f"prophylaxis is active but tcr-infection-prophylaxis raised: {found}")
    else:
        ck(found, f"{agent} drafted without antiviral/PJP prophylaxis: findings {sb.finding_codes(cards)}")
        ck(not found or agent in found[0].get("agents", []), f"finding should name {agent}: {found}")
    ck("same-target-after-failure" not in sb.finding_codes(cards), "BCMA-naive patient: no same-target finding")
    ck.done()


def t11_14_len_refractory() -> sb.Patient:
    p = len_maintenance_relapse("statement", pid="sp-ven")
    sb.fish_text(p, "2021-01-12", "CCND1/IGH fusion [t(11;14)(q13;q32)] detected in 78% of nuclei. "
                                  "TP53 deletion not detected. 1q21 gain not detected.")
    return p


@pytest.mark.parametrize("precautions", [False, True], ids=["no-tls-precautions", "allopurinol-and-hydration"])
@pytest.mark.parametrize("ven_code", ["rxnorm", "brand-text"])
def test_venetoclax_with_t11_14_needs_tls_precautions(service: Any, ck: Checker, ven_code: str,
                                                      precautions: bool) -> None:
    """S20. Len-refractory, PI-sensitive, t(11;14) 78 %: VenVd drafted. The translocation is there
    (no venetoclax-without-t11-14), but tumour lysis precautions are missing → venetoclax-tls-
    precautions; with allopurinol and IV hydration in the basket → no such finding."""
    p = t11_14_len_refractory()
    ven = sb.rx("venetoclax", text="venetoclax 800 mg") if ven_code == "rxnorm" else sb.text_cc("Venclexta 100 mg tablet x8")
    drafts = [sb.draft(p.pid, "d-ven", ven), sb.draft(p.pid, "d-btz", sb.rx("1804997")),
              sb.draft(p.pid, "d-dex", sb.rx("dexamethasone"))]
    if precautions:
        drafts += [sb.draft(p.pid, "d-allo", sb.text_cc("allopurinol 300 mg tablet PO daily")),
                   sb.draft(p.pid, "d-ivf", sb.text_cc("sodium chloride 0.9% 1000 mL IV hydration before dose"))]
    cards = call(service(), p.cds_request("order-sign", drafts=drafts), ck)
    codes = sb.finding_codes(cards)
    ck(not ({"venetoclax-without-t11-14", "venetoclax-t11-14-unknown"} & codes), f"t(11;14) is documented: {codes}")
    if precautions:
        ck("venetoclax-tls-precautions" not in codes, f"allopurinol + hydration drafted, TLS finding still: {codes}")
    else:
        ck("venetoclax-tls-precautions" in codes, f"venetoclax without TLS precautions: findings {codes}")
    ck.done()


def planned_car_t(p: sb.Patient, how: str) -> None:
    if how == "apheresis-done":
        p.add({"resourceType": "Procedure", "status": "completed", "performedDateTime": "2026-10-20",
               "code": {"text": "Leukapheresis for CAR-T cell manufacturing (ciltacabtagene autoleucel, Carvykti)"}})
    else:  # a planned CAR-T infusion (Procedure in preparation, no performed date)
        p.add({"resourceType": "Procedure", "status": "preparation",
               "code": {"text": "CAR-T cell therapy: ciltacabtagene autoleucel (Carvykti) - planned"}})


@pytest.mark.parametrize("how", ["apheresis-done", "car-t-planned"])
@pytest.mark.parametrize("benda", ["rxnorm", "brand-text"])
def test_bendamustine_before_car_t(service: Any, ck: Checker, how: str, benda: str) -> None:
    """S21. Len-refractory patient heading to cilta-cel (apheresis done, or infusion planned);
    bendamustine drafted as bridging → alkylator-before-tcr (IMWG/EMN 2025: avoid bendamustine
    before T-cell redirection). A planned CAR-T is not a CAR-T exposure."""
    p = len_maintenance_relapse("statement", pid="sp-benda")
    planned_car_t(p, how)
    view = call(service(), p.cds_request(), ck)
    state = sb.state_of(view)
    ck(state.get("targets", {}).get("BCMA") == "naive", f"planned CAR-T counted as BCMA exposure: {state.get('targets')}")
    ck("ciltacabtagene-autoleucel" not in state.get("agents", {}),
       f"{how}: cilta-cel counted as given before its infusion: {state.get('agents')}")
    ck(state.get("priorLines") == 1, f"{how}: priorLines {state.get('priorLines')} (apheresis/plan is not a line)")
    med = sb.rx("bendamustine", text="bendamustine 90 mg/m2 IV") if benda == "rxnorm" \
        else sb.text_cc("Bendeka (bendamustine HCl) 90 mg/m2 IV days 1-2")
    drafts = [sb.draft(p.pid, "d-benda", med), sb.draft(p.pid, "d-dex", sb.rx("dexamethasone"))]
    cards = call(service(), p.cds_request("order-select", drafts=drafts, selections=["MedicationRequest/d-benda"]), ck)
    found = sb.findings_with(cards, "alkylator-before-tcr")
    ck(found, f"bendamustine before CAR-T: findings {sb.finding_codes(cards)}")
    ck(not found or "bendamustine" in found[0].get("agents", []), f"finding should name bendamustine: {found}")
    ck.done()


def krd_drafts(pid: str, style: str) -> list[dict[str, Any]]:
    if style == "products":
        return [sb.draft(pid, "d-cfz", sb.rx("1806937")), sb.draft(pid, "d-len", sb.rx("1429367")),
                sb.draft(pid, "d-dex", sb.rx("dexamethasone"))]
    if style == "brand-text":
        return [sb.draft(pid, "d-cfz", sb.text_cc("Kyprolis 56 mg/m2 IV days 1,8,15")),
                sb.draft(pid, "d-len", sb.text_cc("Revlimid 25 mg capsule days 1-21")),
                sb.draft(pid, "d-dex", sb.text_cc("dexamethasone 40 mg PO weekly"))]
    # one regimen order, its drugs as a contained Medication's ingredients (oncology-EHR style)
    med = {"resourceType": "Medication", "id": "krd", "code": {"text": "KRd (carfilzomib, lenalidomide, dexamethasone)"},
           "ingredient": [{"itemCodeableConcept": sb.rx(a), "isActive": True}
                          for a in ("carfilzomib", "lenalidomide", "dexamethasone")]}
    return [sb.draft(pid, "d-krd", None, contained=[med], medicationReference={"reference": "#krd"})]


@pytest.mark.parametrize("style", ["products", "brand-text", "regimen-order"])
def test_krd_in_len_refractory_replacement_gives_exactly_the_new_regimen(service: Any, ck: Checker,
                                                                          style: str) -> None:
    """S22. KRd drafted after PD on lenalidomide maintenance: refractory-agent-ordered (IMWG 2021
    pitfall). Accepting "Replace with X" must leave exactly X's drugs in the basket (dexamethasone
    aside): no lenalidomide left, never two proteasome inhibitors (e.g. carfilzomib + bortezomib)."""
    p = len_maintenance_relapse("statement", pid="sp-krd")
    drafts = krd_drafts(p.pid, style)
    cards = call(service(), p.cds_request("order-select", drafts=drafts), ck)
    found = sb.findings_with(cards, "refractory-agent-ordered")
    ck(found and "lenalidomide" in found[0].get("agents", []), f"KRd after PD on R: findings {sb.finding_codes(cards)}")
    replacements = [(m.group(1), s) for c in sb.of_kind(cards, "finding") for s in c.get("suggestions", [])
                    if (m := re.match(r"Replace with ([\w-]+)", s.get("label", "")))]
    ck(replacements, "no 'Replace with' suggestion for a refractory-agent order")
    steroids = {"dexamethasone", "prednisone"}
    for regimen, suggestion in replacements:
        basket = sb.apply_suggestion(drafts, suggestion)
        got: set[str] = set()
        twice: set[str] = set()
        for res in basket:
            here = set(sb.agents_in_order(res))
            for m in res.get("contained", []):
                for ing in m.get("ingredient", []):
                    here |= sb.agents_in_order({"medicationCodeableConcept": ing.get("itemCodeableConcept", {})})
            twice |= here & got
            got |= here
        ck(not twice, f"'Replace with {regimen}' leaves {sorted(twice)} ordered twice")
        want = sb.regimen_agents(regimen) - steroids
        ck(got - steroids == want, f"after 'Replace with {regimen}' the basket holds {sorted(got)}, expected {sorted(want)}")
        ck(len(got & sb.PIS) <= 1, f"'Replace with {regimen}' leaves two proteasome inhibitors: {sorted(got & sb.PIS)}")
        ck("lenalidomide" not in got, f"'Replace with {regimen}' leaves lenalidomide in the basket")
    ck.done()


@pytest.mark.parametrize("prior_fish", [False, True], ids=["never-tested", "tested-at-diagnosis"])
def test_fish_panel_at_first_relapse_depends_on_prior_fish(service: Any, ck: Checker, prior_fish: bool) -> None:
    """S26. Full FISH panel drafted at first relapse. If FISH was done at diagnosis, primary
    translocations need not be repeated (only del(17p)/1q can be acquired) → repeat-fish-primary-
    translocations. If FISH was NEVER done, the full panel is right — t(11;14) decides whether
    venetoclax is an option and the IMS/IMWG 2025 risk needs the translocations — no such finding,
    and the patient-view restaging advice must not limit testing to del(17p)/1q."""
    p = len_maintenance_relapse("statement", pid="sp-fish-order")
    if prior_fish:
        sb.fish_text(p, "2021-01-12", "t(4;14), t(14;16), t(11;14) not detected. TP53 deletion not detected. "
                                      "1q21 gain not detected.")
    view = call(service(), p.cds_request(), ck)
    if not prior_fish:
        text = "\n".join(sb.card_text(c) for c in view)
        ck(not re.search(r"del\(17p\)\s*/\s*1q only|only del\(17p\)", text, re.I),
           "never-tested patient told to test del(17p)/1q only (t(11;14) and the translocations are unknown)")
    drafts = [{"resourceType": "ServiceRequest", "id": "d-fish", "status": "draft", "intent": "order",
               "subject": {"reference": f"Patient/{p.pid}"},
               "code": {"text": "FISH plasma cell myeloma panel: t(4;14), t(14;16), t(11;14), 17p, 1q"}}]
    cards = call(service(), p.cds_request("order-select", drafts=drafts), ck)
    repeat = "repeat-fish-primary-translocations" in sb.finding_codes(cards)
    if prior_fish:
        ck(repeat, f"primary translocations re-tested at relapse: findings {sb.finding_codes(cards)}")
    else:
        ck(not repeat, "a never-tested patient is told not to test primary translocations")
    ck.done()
