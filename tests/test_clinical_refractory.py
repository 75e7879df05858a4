"""Exposed / refractory per agent (IMWG 60-day rule), classes, TCR, penta, lenalidomide flags."""

from __future__ import annotations

from cds_service.clinical.state import derive_state
from tests.clinical_builders import AS_OF, asct, d, flatten, med, prog, record, regimen


def test_progression_on_lenalidomide_maintenance():
    meds = flatten(
        regimen(["bortezomib", "lenalidomide", "dexamethasone"], "2019-01-01", "2019-05-01"),
        med("lenalidomide", "2019-09-01", "2022-04-01"),
    )
    st = derive_state(record(meds, progressions=[prog("2022-03-15")], transplants=[asct("2019-07-01")]), AS_OF)
    assert st.prior_lines == 1
    assert st.progressed_on_len_maintenance is True
    len_ev = st.agents["lenalidomide"]
    assert len_ev.status == "refractory"
    assert len_ev.progression_date == d("2022-03-15")
    assert "2022-03-15" in len_ev.reason
    assert st.agents["bortezomib"].status == "exposed"
    assert st.classes == {"IMiD": "refractory", "PI": "exposed", "anti-CD38": "naive"}
    assert st.relapsed and st.last_progression == d("2022-03-15")
    # from the ASCT (2019-07-01) to progression
    assert st.last_response_months is not None and 32 < st.last_response_months < 33
    assert st.short_response is False


def test_progression_after_len_maintenance_stopped_long_before_is_not_on_maintenance():
    meds = flatten(
        regimen(["bortezomib", "lenalidomide"], "2019-01-01", "2019-05-01"),
        med("lenalidomide", "2019-09-01", "2021-01-01", stop="toxicity"),
    )
    st = derive_state(record(meds, progressions=[prog("2022-06-01")], transplants=[asct("2019-07-01")]), AS_OF)
    assert st.progressed_on_len_maintenance is False
    assert st.agents["lenalidomide"].status == "exposed"
    assert st.len_recent_exposure is False


def test_no_len_maintenance_is_false_not_none():
    st = derive_state(record(regimen(["bortezomib", "cyclophosphamide"], "2021-01-01", ongoing=True)), AS_OF)
    assert st.progressed_on_len_maintenance is False


def test_toxicity_stop_then_progression_within_60_days_is_refractory():
    meds = flatten(
        med("bortezomib", "2021-01-01", "2021-06-01", stop="toxicity"),
        med("lenalidomide", "2021-01-01", "2021-06-01", stop="toxicity"),
    )
    st = derive_state(record(meds, progressions=[prog("2021-07-15")]), AS_OF)
    assert st.agents["bortezomib"].status == "refractory"
    assert "60-day" in st.agents["bortezomib"].reason


def test_stopped_more_than_60_days_before_progression_is_exposed():
    meds = flatten(regimen(["bortezomib", "thalidomide"], "2020-01-01", "2020-06-30", stop="completed"))
    st = derive_state(record(meds, progressions=[prog("2020-09-15")]), AS_OF)  # 77 days later
    assert st.agents["bortezomib"].status == "exposed"
    assert st.agents["thalidomide"].status == "exposed"
    assert "77 days later" in st.agents["bortezomib"].reason
    assert st.relapsed


def test_exactly_60_days_is_refractory():
    meds = [med("bortezomib", "2020-01-01", "2020-06-30", stop="completed")]
    st = derive_state(record(meds, progressions=[prog("2020-08-29")]), AS_OF)
    assert st.agents["bortezomib"].status == "refractory"


def test_len_stopped_60_days_to_6_months_before_progression_flag():
    meds = flatten(regimen(["lenalidomide", "dexamethasone"], "2020-01-01", "2021-01-01", stop="completed"))
    st = derive_state(record(meds, progressions=[prog("2021-05-01")]), AS_OF)  # 120 days
    assert st.agents["lenalidomide"].status == "exposed"
    assert st.len_recent_exposure is True
    st = derive_state(record(meds, progressions=[prog("2021-09-01")]), AS_OF)  # 8 months
    assert st.len_recent_exposure is False
    st = derive_state(record(meds, progressions=[prog("2021-02-01")]), AS_OF)  # 31 days
    assert st.agents["lenalidomide"].status == "refractory"
    assert st.len_recent_exposure is False


def test_refractory_by_no_response_stop_reason_without_progression_event():
    meds = flatten(
        med("carfilzomib", "2022-01-01", "2022-04-01", stop="progression"),
        med("pomalidomide", "2022-04-10", ongoing=True),
    )
    st = derive_state(record(meds), AS_OF)
    assert st.agents["carfilzomib"].status == "refractory"
    assert "no response" in st.agents["carfilzomib"].reason
    assert st.relapsed  # the stop itself dates a progression
    assert st.prior_lines == 2


def test_ongoing_agent_with_progression_is_refractory():
    meds = flatten(regimen(["daratumumab", "lenalidomide", "dexamethasone"], "2021-01-01", ongoing=True))
    st = derive_state(record(meds, progressions=[prog("2024-02-01")]), AS_OF)
    assert st.agents["daratumumab"].status == "refractory"
    assert st.agents["lenalidomide"].status == "refractory"
    assert st.agents["daratumumab"].ongoing


def test_progression_that_led_to_start_does_not_make_new_agent_refractory():
    meds = flatten(
        med("lenalidomide", "2020-01-01", "2022-01-01"),
        regimen(["daratumumab", "bortezomib"], "2022-01-05", ongoing=True),
    )
    st = derive_state(record(meds, progressions=[prog("2022-01-12")]), AS_OF)
    assert st.agents["lenalidomide"].status == "refractory"
    assert st.agents["daratumumab"].status == "exposed"


def test_unknown_stop_followed_by_new_therapy_is_exposed_with_missing_evidence():
    meds = flatten(
        med("bortezomib", "2021-01-01", "2021-06-01"),
        med("carfilzomib", "2021-06-20", ongoing=True),
    )
    st = derive_state(record(meds), AS_OF)
    assert st.agents["bortezomib"].status == "exposed"
    assert any("bortezomib" in m and "no progression date" in m for m in st.missing)


def test_triple_class_refractory_and_penta():
    meds = flatten(
        regimen(["bortezomib", "lenalidomide", "dexamethasone"], "2018-01-01", "2020-01-01"),
        regimen(["daratumumab", "pomalidomide", "dexamethasone"], "2020-01-10", "2022-01-01"),
        regimen(["carfilzomib", "dexamethasone"], "2022-01-10", "2023-01-01"),
    )
    progs = [prog("2019-12-20"), prog("2021-12-20"), prog("2022-12-20")]
    st = derive_state(record(meds, progressions=progs), AS_OF)
    assert st.prior_lines == 3
    assert all(ev.status == "refractory" for ev in st.agents.values())
    assert st.double_refractory and st.triple_class_exposed and st.triple_class_refractory
    assert st.penta_refractory
    # carfilzomib only exposed → not penta
    progs2 = [prog("2019-12-20"), prog("2021-12-20"), prog("2023-06-01")]
    st2 = derive_state(record(meds, progressions=progs2), AS_OF)
    assert st2.triple_class_refractory and not st2.penta_refractory
    assert st2.agents["carfilzomib"].status == "exposed"


def test_triple_class_exposed_not_refractory():
    meds = flatten(
        regimen(["daratumumab", "bortezomib", "lenalidomide"], "2020-01-01", "2020-06-01", stop="toxicity"),
    )
    st = derive_state(record(meds), AS_OF)
    assert st.triple_class_exposed and not st.triple_class_refractory
    assert st.classes == {"IMiD": "exposed", "PI": "exposed", "anti-CD38": "exposed"}
    assert st.on_first_line


def test_contract_agents_lists_only_received_and_classes_always_three():
    st = derive_state(record([med("lenalidomide", "2021-01-01", ongoing=True)]), AS_OF)
    c = st.to_contract()
    assert c["agents"] == {"lenalidomide": "exposed"}
    assert set(c["classes"]) == {"IMiD", "PI", "anti-CD38"}
    assert c["classes"]["PI"] == "naive"
