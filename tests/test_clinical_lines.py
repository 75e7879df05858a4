"""Lines of therapy (IMWG, Rajkumar 2015) and exposure courses."""

from __future__ import annotations

from datetime import timedelta

from cds_service.clinical.courses import build_courses
from cds_service.clinical.state import derive_state
from tests.clinical_builders import (
    AS_OF,
    asct,
    cycles,
    d,
    flatten,
    med,
    prog,
    record,
    regimen,
)


def test_induction_asct_maintenance_is_one_line():
    meds = flatten(
        regimen(["bortezomib", "lenalidomide", "dexamethasone"], "2020-02-01", "2020-06-30", stop="completed"),
        med("melphalan", "2020-08-01", "2020-08-01", kind="administration"),
        med("lenalidomide", "2020-10-15", ongoing=True),
    )
    st = derive_state(record(meds, transplants=[asct("2020-08-03")]), AS_OF)
    assert st.prior_lines == 1
    line = st.lines[0]
    assert line.includes_asct and line.asct_date == d("2020-08-03")
    assert line.maintenance_agents == ["lenalidomide"]
    assert line.ongoing and line.ended_by == "ongoing"
    assert "melphalan" not in line.agents  # conditioning is part of the transplant
    assert st.on_first_line and not st.relapsed
    assert st.transplant.maintenance_after_asct is True
    assert st.progressed_on_len_maintenance is False


def test_cyclophosphamide_induction_then_len_maintenance_after_asct_one_line():
    meds = flatten(
        cycles("cyclophosphamide", "2021-01-04", 4),
        cycles("bortezomib", "2021-01-04", 4),
        med("lenalidomide", "2021-08-01", ongoing=True),
    )
    st = derive_state(record(meds, transplants=[asct("2021-05-20")]), AS_OF)
    assert st.prior_lines == 1
    assert st.lines[0].maintenance_agents == ["lenalidomide"]


def test_per_cycle_requests_merge_into_one_course():
    meds = cycles("lenalidomide", "2022-01-01", 10)
    courses, _, _ = build_courses(meds, AS_OF)
    assert len(courses) == 1
    assert courses[0].start == d("2022-01-01")
    assert courses[0].end == d("2022-01-01") + timedelta(days=9 * 28 + 20)
    assert len(courses[0].sources) == 10


def test_per_dose_administrations_merge():
    start = d("2022-03-01")
    meds = [
        med(
            "daratumumab",
            (start + timedelta(days=7 * i)).isoformat(),
            (start + timedelta(days=7 * i)).isoformat(),
            kind="administration",
            status="completed",
        )
        for i in range(8)
    ] + [
        med(
            "daratumumab",
            (start + timedelta(days=56 + 28 * i)).isoformat(),
            None,
            kind="administration",
            status="completed",
        )
        for i in range(6)
    ]
    courses, _, _ = build_courses(meds, AS_OF)
    assert len(courses) == 1


def test_toxicity_switch_is_new_line_not_refractory():
    meds = flatten(
        regimen(["bortezomib", "lenalidomide", "dexamethasone"], "2021-01-01", "2021-04-01", stop="toxicity"),
        regimen(["carfilzomib", "lenalidomide", "dexamethasone"], "2021-04-10", ongoing=True),
    )
    st = derive_state(record(meds), AS_OF)
    assert st.prior_lines == 2
    assert st.lines[0].ended_by == "toxicity"
    assert st.agents["bortezomib"].status == "exposed"
    assert "toxicity" in st.agents["bortezomib"].reason
    assert not st.relapsed
    assert not st.on_first_line


def test_substitution_with_continuing_agent_keeps_it_in_new_line():
    meds = flatten(
        regimen(["bortezomib", "dexamethasone"], "2021-01-01", "2021-04-01", stop="toxicity"),
        med("lenalidomide", "2021-01-01", ongoing=True),
        med("carfilzomib", "2021-04-10", ongoing=True),
    )
    st = derive_state(record(meds), AS_OF)
    assert st.prior_lines == 2
    assert set(st.lines[1].agents) == {"lenalidomide", "carfilzomib"}
    assert st.agents["lenalidomide"].lines == [1, 2]


def test_dropping_an_agent_is_not_a_new_line_and_makes_maintenance():
    meds = flatten(
        med("bortezomib", "2021-01-01", "2021-09-01", stop="completed"),
        med("lenalidomide", "2021-01-01", ongoing=True),
        med("dexamethasone", "2021-01-01", "2021-09-01"),
    )
    st = derive_state(record(meds), AS_OF)
    assert st.prior_lines == 1
    assert st.lines[0].maintenance_agents == ["lenalidomide"]


def test_steroid_changes_do_not_define_lines():
    meds = flatten(
        med("lenalidomide", "2021-01-01", ongoing=True),
        med("dexamethasone", "2021-01-01", "2021-03-01"),
        med("prednisone", "2021-08-01", "2021-12-01"),
        med("dexamethasone", "2022-06-01", "2022-07-01"),
    )
    st = derive_state(record(meds), AS_OF)
    assert st.prior_lines == 1
    assert "dexamethasone" not in st.agents and "prednisone" not in st.agents
    assert "dexamethasone" in st.lines[0].label


def test_treatment_free_interval_restart_is_new_line():
    meds = flatten(
        regimen(["bortezomib", "melphalan", "prednisone"], "2019-01-01", "2019-12-01", stop="completed"),
        regimen(["bortezomib", "melphalan", "prednisone"], "2020-06-01", "2020-12-01", stop="completed"),
    )
    st = derive_state(record(meds), AS_OF)
    assert st.prior_lines == 2
    assert st.lines[0].ended_by == "completed"


def test_drug_holiday_within_line_is_not_a_new_line():
    meds = flatten(
        med("bortezomib", "2021-01-01", "2021-12-01"),
        med("lenalidomide", "2021-01-01", "2021-04-01"),
        med("lenalidomide", "2021-06-20", "2021-12-01"),  # 80-day hold while bortezomib continues
    )
    st = derive_state(record(meds), AS_OF)
    assert st.prior_lines == 1


def test_unplanned_addition_is_new_line():
    meds = flatten(
        regimen(["lenalidomide", "dexamethasone"], "2021-01-01", ongoing=True),
        med("daratumumab", "2021-07-01", ongoing=True),
    )
    st = derive_state(record(meds), AS_OF)
    assert st.prior_lines == 2


def test_regimen_assembled_over_first_cycle_is_one_line():
    meds = flatten(
        regimen(["lenalidomide", "dexamethasone"], "2021-01-01", ongoing=True),
        med("daratumumab", "2021-01-20", ongoing=True),
    )
    st = derive_state(record(meds), AS_OF)
    assert st.prior_lines == 1


def test_progression_then_change_starts_new_line_and_no_therapy_yet_is_relapsed():
    meds = flatten(regimen(["daratumumab", "lenalidomide", "dexamethasone"], "2020-01-01", "2023-05-01"))
    st = derive_state(record(meds, progressions=[prog("2023-04-20")]), AS_OF)
    assert st.prior_lines == 1
    assert st.relapsed and not st.on_first_line
    assert st.lines[0].ended_by == "progression"
    assert st.lines[0].progression_date == d("2023-04-20")
    assert st.frontline_anti_cd38 == "with-lenalidomide"

    meds2 = meds + regimen(["carfilzomib", "pomalidomide", "dexamethasone"], "2023-05-05", ongoing=True)
    st2 = derive_state(record(meds2, progressions=[prog("2023-04-20")]), AS_OF)
    assert st2.prior_lines == 2
    assert st2.agents["carfilzomib"].status == "exposed"


def test_progression_charted_after_new_line_started_still_ends_previous_line():
    meds = flatten(
        regimen(["bortezomib", "lenalidomide"], "2020-01-01", "2022-03-01"),
        regimen(["daratumumab", "pomalidomide"], "2022-03-01", ongoing=True),
    )
    st = derive_state(record(meds, progressions=[prog("2022-03-08")]), AS_OF)
    assert st.lines[0].progression_date == d("2022-03-08")
    assert st.agents["lenalidomide"].status == "refractory"
    assert st.agents["daratumumab"].status == "exposed"


def test_dvmp_frontline_type_ignores_conditioning():
    meds = flatten(regimen(["daratumumab", "bortezomib", "melphalan", "prednisone"], "2020-01-01", "2021-01-01"))
    st = derive_state(record(meds), AS_OF)
    assert st.frontline_anti_cd38 == "with-bortezomib-alkylator"
    meds = flatten(
        regimen(["daratumumab", "bortezomib", "thalidomide"], "2020-01-01", "2020-05-01"),
        med("melphalan", "2020-06-28", "2020-06-29", kind="administration"),
    )
    st = derive_state(record(meds, transplants=[asct("2020-07-01")]), AS_OF)
    assert st.frontline_anti_cd38 == "other"


def test_tandem_asct_is_one_line():
    meds = flatten(regimen(["bortezomib", "lenalidomide"], "2020-01-01", "2020-05-01"))
    st = derive_state(record(meds, transplants=[asct("2020-07-01"), asct("2020-10-01")]), AS_OF)
    assert st.prior_lines == 1
    assert st.transplant.asct_date == d("2020-10-01")


def test_cancelled_and_future_records_are_not_exposure():
    meds = [
        med("carfilzomib", "2021-01-01", "2021-05-01", status="cancelled", kind="request"),
        med("lenalidomide", "2021-01-01", ongoing=True),
        med("pomalidomide", (AS_OF + timedelta(days=10)).isoformat(), kind="request", status="active"),
    ]
    st = derive_state(record(meds), AS_OF)
    assert set(st.agents) == {"lenalidomide"}


def test_no_agent_is_insufficient_data():
    meds = [med(None, "2021-01-01", "2021-02-01", display="aspirin", category="antithrombotic")]
    st = derive_state(record(meds), AS_OF)
    assert st.insufficient_data and st.prior_lines == 0 and not st.on_first_line
    assert st.agents == {}
    assert st.missing


def test_undated_agent_is_exposed_with_missing_note():
    st = derive_state(record([med("lenalidomide", None)]), AS_OF)
    assert st.insufficient_data
    assert st.agents["lenalidomide"].status == "exposed"
    assert any("without dates" in m for m in st.missing)


def test_non_myeloma_patient():
    st = derive_state(record([med("lenalidomide", "2021-01-01")], myeloma=False), AS_OF)
    assert st.multiple_myeloma is False
    assert st.to_contract()["multipleMyeloma"] is False


def test_substitution_does_not_make_continuing_agent_maintenance():
    meds = flatten(
        med("bortezomib", "2021-01-01", "2021-04-01", stop="toxicity"),
        med("lenalidomide", "2021-01-01", "2023-01-01"),
        med("carfilzomib", "2021-04-10", "2023-01-01"),
    )
    st = derive_state(record(meds, progressions=[prog("2022-12-15")]), AS_OF)
    assert st.prior_lines == 2
    assert st.lines[0].maintenance_agents == []
    assert st.progressed_on_len_maintenance is False
    assert st.agents["lenalidomide"].status == "refractory"


def test_line_stopped_for_toxicity_then_later_progression_ended_by_toxicity():
    meds = flatten(
        regimen(["carfilzomib", "pomalidomide", "dexamethasone"], "2025-10-06", "2026-03-30", stop="toxicity")
    )
    st = derive_state(record(meds, progressions=[prog("2026-08-31")]), AS_OF)
    line = st.lines[0]
    assert line.ended_by == "toxicity" and line.progression_date == d("2026-08-31")
    assert st.agents["carfilzomib"].status == "exposed"
    meds = flatten(regimen(["bortezomib", "lenalidomide"], "2020-01-01", "2020-09-01", stop="completed"))
    st = derive_state(record(meds, progressions=[prog("2022-08-31")]), AS_OF)
    assert st.lines[0].ended_by == "completed"
    st = derive_state(record(meds, progressions=[prog("2020-10-01")]), AS_OF)
    assert st.lines[0].ended_by == "progression"


def test_stale_active_cycle_orders_do_not_run_into_later_lines():
    stale = [
        med(a, f"2021-{m:02d}-01", None, kind="request", status="active", ongoing=True)
        for a in ("bortezomib", "lenalidomide")
        for m in range(1, 9)
    ]
    meds = stale + regimen(["daratumumab", "pomalidomide"], "2022-06-01", ongoing=True)
    st = derive_state(record(meds, progressions=[prog("2022-05-20"), prog("2026-09-01")]), AS_OF)
    assert st.prior_lines == 2
    assert st.lines[1].agents == ["daratumumab", "pomalidomide"]
    assert st.agents["lenalidomide"].status == "exposed"
    assert st.agents["daratumumab"].status == "refractory"
    # the current cycle order of an ongoing regimen stays ongoing
    current = [
        med("lenalidomide", f"2026-{m:02d}-01", None, kind="request", status="active", ongoing=True) for m in (8, 9, 10)
    ]
    st = derive_state(record(current), AS_OF)
    assert st.agents["lenalidomide"].ongoing


def test_active_cycle_order_in_its_rest_days_is_ongoing():
    meds = [
        med("lenalidomide", "2026-09-01", "2026-09-21", kind="request", status="completed"),
        med("lenalidomide", "2026-09-29", "2026-10-19", kind="request", status="completed"),
        med("lenalidomide", "2026-10-06", "2026-10-26", kind="request", status="active"),
    ]
    st = derive_state(record(meds), AS_OF)
    assert st.lines[0].ongoing and st.agents["lenalidomide"].ongoing
    meds[-1].status = "completed"
    st = derive_state(record(meds), AS_OF)
    assert not st.lines[0].ongoing
