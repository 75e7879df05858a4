"""Every card the rules render validates against the CDS Hooks response schema and CONTRACT's extension."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from rules_builders import ROOT, draft, knowledge, record, settings, state
from test_rules_options import states

from cds_service.clinical.model import Cytogenetics, TransplantState
from cds_service.render.orders import order_cards
from cds_service.render.patient_view import patient_view_cards

K = knowledge()
SCHEMA_PATH = ROOT / "cds_service" / "hooks" / "schemas" / "response.schema.json"
CONTRACT_SETTINGS = {"first-relapse-len-sensitive", "first-relapse-len-refractory", "first-relapse-after-anti-cd38",
                     "later-relapse", "triple-class-refractory", "not-relapsed", "insufficient-data"}


@pytest.fixture(scope="module")
def validator():
    assert SCHEMA_PATH.is_file(), "the response schema ships with the hooks package"
    return Draft202012Validator(json.loads(Path(SCHEMA_PATH).read_text()))


def check_cards(cards, validator):
    errors = sorted(validator.iter_errors({"cards": cards}), key=lambda e: list(e.path))
    assert not errors, errors[0].message + " at " + "/".join(map(str, errors[0].path))
    for c in cards:
        assert len(c["summary"]) < 140
        assert c["uuid"] and all(s["uuid"] for s in c.get("suggestions", []))
        ext = c["extension"]["org.mmcds.card"]
        assert ext["knowledgeVersion"] == K.version and ext["ruleId"]
        assert ext["sources"], c["summary"]
        for s in ext["sources"]:
            assert set(s) >= {"seed", "citation", "url"} and s["citation"]
            assert s["url"] is None or "?term=" not in s["url"]  # a work, never a search
        if ext["kind"] == "options":
            assert ext["setting"] in CONTRACT_SETTINGS
            for o in ext["options"]:
                assert set(o) >= {"regimen", "tier", "rank", "grade", "sources"}
            for a in ext["avoid"]:
                assert set(a) >= {"regimen", "reason"}
        if ext["kind"] == "finding":
            assert ext["code"] and isinstance(ext["agents"], list) and ext["orders"]
            assert c.get("overrideReasons")
        if ext["kind"] == "notice":
            assert ext["code"]


def test_patient_view_has_exactly_one_options_card_and_valid_notices(validator):
    s = state(lines=1, refractory=("lenalidomide",), plasma_cell_leukemia=True,
              cytogenetics=Cytogenetics(tested=True, high_risk=True, findings=["del(17p)"], t11_14=False),
              transplant=TransplantState(prior_asct=True, months_asct_to_progression=20, salvage_asct="discuss"))
    cards = patient_view_cards(s, K, settings())
    kinds = [c["extension"]["org.mmcds.card"]["kind"] for c in cards]
    assert kinds.count("options") == 1 and kinds[0] == "options" and "state" not in kinds
    check_cards(cards, validator)
    opts = cards[0]
    assert "Avoid" in opts["detail"] and "DRd" in opts["detail"] and "lenalidomide-refractory" in opts["detail"]
    assert "Where sources disagree" in opts["detail"]
    assert opts["summary"].startswith("First relapse, len-refractory: preferred VDT-PACE")


def test_options_card_marks_beyond_the_seeds_and_tcr_prognosis(validator):
    cards = patient_view_cards(state(lines=4, refractory=("lenalidomide", "bortezomib", "daratumumab")), K, settings())
    check_cards(cards, validator)
    assert "not graded in IMWG 2021" in cards[0]["detail"] and "5.6 months" in cards[0]["detail"]
    opts = cards[0]["extension"]["org.mmcds.card"]["options"]
    assert any(o.get("beyondSeeds") for o in opts if o["regimen"] == "teclistamab")


def test_options_card_marks_off_label_options_and_words_the_avoid_reasons(validator):
    """BVd at 1 prior line is off-label in the US (label from 2): the compact list says so. A trial
    exclusion reads "outside the DREAMM-7 population" (trial name intact), never a reason code, and
    the summary's avoid names refractoriness first. Setting notes sit under their own heading."""
    us = patient_view_cards(state(lines=1, exposed=("bortezomib", "lenalidomide"), age=80, frail=True, ecog=2),
                            K, settings())[0]
    check_cards([us], validator)
    assert "BVd (off-label in US)" in us["detail"]
    assert "**Notes**" in us["detail"]
    tcr = patient_view_cards(state(lines=4, refractory=("lenalidomide", "bortezomib", "daratumumab")), K, settings())[0]
    assert "outside the DREAMM-7 population: BVd" in tcr["detail"]
    assert "outside-" not in tcr["summary"] and "avoid bortezomib-based" in tcr["summary"]


def test_not_relapsed_still_gets_one_options_card(validator):
    cards = patient_view_cards(state(lines=1, relapsed=False, on_first_line=True), K, settings())
    assert len(cards) == 1 and cards[0]["extension"]["org.mmcds.card"]["setting"] == "not-relapsed"
    check_cards(cards, validator)


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=states(), car_t=st.booleans(),
       agents=st.lists(st.sampled_from(["lenalidomide", "pomalidomide", "bortezomib", "daratumumab", "isatuximab",
                                        "venetoclax", "selinexor", "dexamethasone"]), min_size=1, max_size=3, unique=True))
def test_every_generated_card_validates(s, car_t, agents):
    v = Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    check_cards(patient_view_cards(s, K, settings(car_t_available=car_t)), v)
    drafts = [draft(f"MedicationRequest/m{i}", [a], route="iv" if a == "bortezomib" else None,
                    high_dose_steroid=a == "dexamethasone") for i, a in enumerate(agents)]
    drafts.append(draft("ServiceRequest/fish", [], is_fish_panel=True))
    refractory = {a.replace("-", " ") for a, e in s.agents.items() if e.status == "refractory"} - {"dexamethasone"}
    if s.progressed_on_len_maintenance or s.len_recent_exposure:
        refractory.add("lenalidomide")
    for hook in ("order-select", "order-sign"):
        cards = order_cards(s, drafts, K, settings(car_t_available=car_t), hook, record=record())
        check_cards(cards, v)
        for c in cards:  # a suggestion never creates a drug the disease is refractory to
            for sug in c.get("suggestions", []):
                for act in sug["actions"]:
                    if act["type"] == "create" and act["resource"]["resourceType"] == "MedicationRequest":
                        MedicationRequest.model_validate(act["resource"])
                        assert act["resource"]["medicationCodeableConcept"]["text"] not in refractory
