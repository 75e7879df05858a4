"""Order checks: one test per CONTRACT finding code, with the card and its suggestions validated."""

from __future__ import annotations

from datetime import date

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest
from rules_builders import draft, knowledge, record, settings, state, supportive

from cds_service.clinical.model import Cytogenetics
from cds_service.clinical.orders import check_orders
from cds_service.render.orders import order_cards

K = knowledge()
LEN_MAINT = dict(lines=1, refractory=("lenalidomide",), exposed=("bortezomib",), progressed_on_len_maintenance=True)
FULL_SUPPORT = record(supportive("antithrombotic"), supportive("zoster-prophylaxis"), supportive("antiemetic"),
                      supportive("pjp-prophylaxis"))


def run(s, drafts, hook="order-sign", rec=FULL_SUPPORT, **kw):
    return order_cards(s, drafts, K, settings(**kw), hook, record=rec)


def by_code(cards):
    out = {}
    for c in cards:
        out.setdefault(c["extension"]["org.mmcds.card"]["code"], c)
    return out


def created(card):
    return [a["resource"] for s in card.get("suggestions", []) for a in s["actions"] if a["type"] in ("create", "update")]


def test_refractory_agent_ordered_names_agent_line_date_and_pitfall_and_replaces_the_draft():
    s = state(**LEN_MAINT)
    cards = run(s, [draft("MedicationRequest/len1", ["lenalidomide"]), draft("MedicationRequest/dex1", ["dexamethasone"])])
    c = by_code(cards)["refractory-agent-ordered"]
    ext = c["extension"]["org.mmcds.card"]
    assert c["indicator"] in ("warning", "critical")
    assert ext["agents"] == ["lenalidomide"] and ext["orders"] == ["MedicationRequest/len1"]
    assert "lenalidomide" in c["summary"] and "2024-03-01" in c["summary"] and "line 1" in c["summary"]
    assert "pitfall" in c["detail"].lower() and "maintenance" in c["detail"]
    # the suggestions are the orderable options whose drugs all carry a verified code
    assert any(sug["label"].startswith("Replace with PVd") for sug in c["suggestions"])
    pvd = next(sug for sug in c["suggestions"] if sug["label"].startswith("Replace with PVd"))
    # creates first (a client applying only the first action still shows a drug of the regimen)
    assert pvd["actions"][-1] == {"type": "delete", "description": "Remove draft lenalidomide",
                                  "resourceId": ["MedicationRequest/len1"]}
    assert [a["type"] for a in pvd["actions"]] == ["create", "create", "delete"]
    names = [a["resource"]["medicationCodeableConcept"]["text"] for a in pvd["actions"] if a["type"] == "create"]
    assert names == ["pomalidomide", "bortezomib"]  # dexamethasone already drafted: not duplicated
    assert c["selectionBehavior"] == "at-most-one"
    assert c["overrideReasons"] and all(r["system"].startswith("https://") for r in c["overrideReasons"])
    for res in created(c):
        MedicationRequest.model_validate(res)
        assert res["status"] == "draft" and res["subject"] == {"reference": "Patient/p1"}
        assert "dosageInstruction" not in res and "doseAndRate" not in str(res)


def test_pomalidomide_in_len_refractory_patient_is_not_a_refractory_order():
    cards = run(state(**LEN_MAINT), [draft("MedicationRequest/p", ["pomalidomide"]),
                                     draft("MedicationRequest/b", ["bortezomib"]),
                                     draft("MedicationRequest/d", ["dexamethasone"])])
    assert "refractory-agent-ordered" not in by_code(cards)


def test_anti_cd38_retreatment_info_with_004_figures():
    s = state(lines=2, refractory=("daratumumab", "lenalidomide"), exposed=("bortezomib",))
    c = by_code(run(s, [draft("MedicationRequest/d1", ["daratumumab"])]))
    card = c["anti-cd38-retreatment"]
    assert card["indicator"] == "info"
    for fig in ("4.6 months", "9.5 months", "17.3 months", "49 %", "65 %", "10.8 months", "HR 0.59"):
        assert fig in card["detail"], fig
    assert "cannot recommend" in card["detail"]
    assert c["refractory-agent-ordered"]["indicator"] == "warning"  # still at least a warning


def test_anti_cd38_cross_resistance_isatuximab_after_daratumumab():
    s = state(lines=2, refractory=("daratumumab", "lenalidomide"), exposed=("bortezomib",))
    c = by_code(run(s, [draft("MedicationRequest/i1", ["isatuximab"]), draft("MedicationRequest/p1", ["pomalidomide"])]))
    card = c["anti-cd38-cross-resistance"]
    assert card["indicator"] == "warning"
    assert card["extension"]["org.mmcds.card"]["agents"] == ["isatuximab"]  # the drafted agent; the prior one in text
    assert "daratumumab" in card["summary"]
    assert "IsaPd" in card["detail"] and "unlikely" in card["detail"]
    assert "anti-cd38-retreatment" not in c


def test_daratumumab_exposed_not_refractory_is_quiet():
    s = state(lines=1, exposed=("daratumumab", "bortezomib"))
    c = by_code(run(s, [draft("MedicationRequest/d1", ["daratumumab"]), draft("MedicationRequest/l", ["lenalidomide"]),
                        draft("MedicationRequest/x", ["dexamethasone"])]))
    assert not {"anti-cd38-retreatment", "anti-cd38-cross-resistance", "refractory-agent-ordered"} & set(c)


def test_venetoclax_without_t11_14_is_critical_with_a_delete_or_replace():
    cyto = Cytogenetics(tested=True, findings=["del(17p)"], negatives=["t(11;14)"], t11_14=False, high_risk=True,
                        sources=["Observation/fish1"])
    s = state(lines=2, refractory=("lenalidomide",), exposed=("bortezomib",), cytogenetics=cyto)
    c = by_code(run(s, [draft("MedicationRequest/v1", ["venetoclax"])]))["venetoclax-without-t11-14"]
    assert c["indicator"] == "critical" and "3.13" in c["detail"]
    assert "Observation/fish1" not in c["detail"]  # chart references live in the evidence view
    assert any(a["type"] == "delete" for a in c["suggestions"][0]["actions"])


def test_venetoclax_with_unknown_t11_14_is_a_warning_to_obtain_fish():
    s = state(lines=2, refractory=("lenalidomide",))
    c = by_code(run(s, [draft("MedicationRequest/v1", ["venetoclax"])]))
    assert c["venetoclax-t11-14-unknown"]["indicator"] == "warning"
    assert "FISH" in c["venetoclax-t11-14-unknown"]["summary"]
    assert "venetoclax-without-t11-14" not in c


def test_venetoclax_with_t11_14_is_quiet():
    s = state(lines=2, refractory=("lenalidomide",), cytogenetics=Cytogenetics(tested=True, t11_14=True))
    c = by_code(run(s, [draft("MedicationRequest/v1", ["venetoclax"])]))
    assert not {"venetoclax-without-t11-14", "venetoclax-t11-14-unknown"} & set(c)


@pytest.mark.parametrize("code,agents,category,kw,coded", [
    ("missing-thromboprophylaxis", ["pomalidomide"], "antithrombotic", {}, {"1191"}),
    ("missing-zoster-prophylaxis", ["bortezomib"], "zoster-prophylaxis", {}, {"281", "73645"}),
    ("missing-antiemetic", ["selinexor"], "antiemetic", {}, set()),
    ("missing-pjp-prophylaxis", ["dexamethasone"], "pjp-prophylaxis", {"high_dose_steroid": True}, set()),
])
def test_missing_supportive_care(code, agents, category, kw, coded):
    s = state(lines=1, refractory=("lenalidomide",))
    d = [draft("MedicationRequest/a", agents, **kw)]
    card = by_code(run(s, d, rec=record()))[code]
    assert card["indicator"] == "warning" and card["extension"]["org.mmcds.card"]["orders"] == ["MedicationRequest/a"]
    res = created(card)
    assert all(MedicationRequest.model_validate(r) for r in res)
    # only drugs with a verified RxNorm code are created, each coded and with text; the rest is card text
    assert {r["medicationCodeableConcept"]["coding"][0]["code"] for r in res} == coded
    assert all(r["medicationCodeableConcept"]["text"] for r in res)
    # an active supportive drug in the record, or drafted alongside, silences the check
    assert code not in by_code(run(s, d, rec=record(supportive(category))))
    assert code not in by_code(run(s, [*d, draft("MedicationRequest/s", [], category=category)], rec=record()))
    # a stopped one does not
    assert code in by_code(run(s, d, rec=record(supportive(category, ongoing=False, status="completed"))))


def test_bortezomib_iv_with_neuropathy_suggests_subcutaneous():
    s = state(lines=1, refractory=("lenalidomide",), neuropathy=True)
    res = {"resourceType": "MedicationRequest", "id": "b1", "status": "draft", "intent": "order",
           "subject": {"reference": "Patient/p1"}, "medicationCodeableConcept": {"text": "bortezomib"},
           "dosageInstruction": [{"text": "1.3 mg/m2 IV", "route": {"text": "intravenous"}}]}
    c = by_code(run(s, [draft("MedicationRequest/b1", ["bortezomib"], route="iv", resource=res)]))
    card = c["bortezomib-route-neuropathy"]
    updated = created(card)[0]
    assert updated["dosageInstruction"][0]["route"] == {"text": "subcutaneous"}
    assert updated["dosageInstruction"][0]["text"] == "1.3 mg/m2 IV"  # the prescriber's dose text is kept, not invented
    assert "bortezomib-route-neuropathy" not in by_code(
        run(state(lines=1, refractory=("lenalidomide",)), [draft("MedicationRequest/b1", ["bortezomib"], route="iv")]))


def test_doublet_when_triplet_tolerated_suggests_adding_agents():
    s = state(lines=1, refractory=("lenalidomide",), exposed=("bortezomib",), frail=False)
    cards = run(s, [draft("MedicationRequest/p", ["pomalidomide"]), draft("MedicationRequest/d", ["dexamethasone"])])
    card = by_code(cards)["doublet-when-triplet-tolerated"]
    assert card["indicator"] == "info"
    assert set(card["extension"]["org.mmcds.card"]["orders"]) == {"MedicationRequest/p", "MedicationRequest/d"}
    first = card["suggestions"][0]
    assert first["label"].startswith("Make it PVd")
    assert [r["medicationCodeableConcept"]["text"] for r in created({"suggestions": [first]})] == ["bortezomib"]


def test_doublet_quiet_when_frail_or_triplet():
    frail = state(lines=1, refractory=("lenalidomide",), frail=True)
    d = [draft("MedicationRequest/p", ["pomalidomide"]), draft("MedicationRequest/d", ["dexamethasone"])]
    assert "doublet-when-triplet-tolerated" not in by_code(run(frail, d))
    fit = state(lines=1, refractory=("lenalidomide",))
    assert "doublet-when-triplet-tolerated" not in by_code(run(fit, [*d, draft("MedicationRequest/b", ["bortezomib"])]))


def test_repeat_fish_at_relapse():
    s = state(lines=1, refractory=("lenalidomide",),
              cytogenetics=Cytogenetics(tested=True, findings=["t(4;14)"], high_risk=True))
    card = by_code(run(s, [draft("ServiceRequest/f1", [], is_fish_panel=True)]))["repeat-fish-primary-translocations"]
    assert card["indicator"] == "info" and "del(17p)" in card["summary"] and "t(4;14)" in card["detail"]
    assert "repeat-fish-primary-translocations" not in by_code(
        run(state(lines=1, relapsed=False, on_first_line=True), [draft("ServiceRequest/f1", [], is_fish_panel=True)]))


def test_order_select_only_looks_at_selected_drafts_order_sign_at_all():
    s = state(**LEN_MAINT)
    drafts = [draft("MedicationRequest/len1", ["lenalidomide"], selected=False),
              draft("MedicationRequest/v", ["venetoclax"], selected=True)]
    select = by_code(run(s, drafts, hook="order-select"))
    sign = by_code(run(s, drafts, hook="order-sign"))
    assert "refractory-agent-ordered" not in select and "venetoclax-t11-14-unknown" in select
    assert "refractory-agent-ordered" in sign


def test_non_myeloma_patients_stay_quiet():
    s = state(**LEN_MAINT)
    s.multiple_myeloma = False
    assert run(s, [draft("MedicationRequest/len1", ["lenalidomide"])]) == []
    assert check_orders(s, [draft("MedicationRequest/len1", ["lenalidomide"])], K, settings(), "order-sign") == []


def test_lenalidomide_recent_exposure_order_warns_with_003_reason():
    s = state(lines=1, exposed=("lenalidomide", "bortezomib"), len_recent_exposure=True)
    s.agents["lenalidomide"].last_dose = date(2023, 12, 1)
    card = by_code(run(s, [draft("MedicationRequest/l", ["lenalidomide"])]))["refractory-agent-ordered"]
    assert "6 months" in card["detail"]


def test_cards_sorted_most_severe_first():
    cyto = Cytogenetics(tested=True, t11_14=False)
    s = state(**LEN_MAINT, cytogenetics=cyto)
    cards = run(s, [draft("MedicationRequest/v", ["venetoclax"]), draft("MedicationRequest/l", ["lenalidomide"])],
                rec=record())
    sev = {"critical": 0, "warning": 1, "info": 2}
    assert [sev[c["indicator"]] for c in cards] == sorted(sev[c["indicator"]] for c in cards)
    assert cards[0]["indicator"] == "critical"


def test_dexamethasone_marked_refractory_is_not_a_refractory_order():
    s = state(lines=1, refractory=("lenalidomide", "dexamethasone"))
    c = by_code(run(s, [draft("MedicationRequest/p", ["pomalidomide"]), draft("MedicationRequest/b", ["bortezomib"]),
                        draft("MedicationRequest/d", ["dexamethasone"])]))
    assert "refractory-agent-ordered" not in c


def test_venetoclax_unknown_suggests_a_text_only_fish_service_request():
    from fhir.resources.R4B.servicerequest import ServiceRequest

    c = by_code(run(state(lines=2, refractory=("lenalidomide",)), [draft("MedicationRequest/v1", ["venetoclax"])]))
    card = c["venetoclax-t11-14-unknown"]
    res = created(card)[0]
    assert res["resourceType"] == "ServiceRequest" and "t(11;14)" in res["code"]["text"] and "coding" not in res["code"]
    ServiceRequest.model_validate(res)


def test_car_t_is_never_suggested_as_a_medication_request():
    s = state(lines=4, refractory=("lenalidomide", "bortezomib", "daratumumab"))
    card = by_code(run(s, [draft("MedicationRequest/l", ["lenalidomide"])]))["refractory-agent-ordered"]
    labels = [sug["label"] for sug in card.get("suggestions", [])]
    assert not any("cel" in lab for lab in labels)
    # neither selinexor nor the bispecifics have a verified RxNorm code here: named in the text, never
    # created without a code; Sd is off-label here and never above the approved bispecifics
    assert not any(lab.startswith("Replace with Sd") for lab in labels)
