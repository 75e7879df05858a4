"""Records without a usable start date never open a line of their own (CLINICAL_LOGIC §5): they join
the line their other date places them in, or are listed as undated and the line count is uncertain."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.clinical.state import derive_state
from cds_service.record.model import MedicationUse
from cds_service.record.normalise import build_record
from tests.clinical_builders import AS_OF, med, prog, record, regimen
from tests.record_helpers import RXNORM, knowledge

# RxNorm ingredients (docs/reference/drug_codes.json): bortezomib 358258, lenalidomide 342369,
# dexamethasone 3264
RX = {"bortezomib": "358258", "lenalidomide": "342369", "dexamethasone": "3264"}


def statement(sid: str, agent: str, **dates) -> dict:
    return {"resourceType": "MedicationStatement", "id": sid, "status": dates.pop("status", "completed"),
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": RX[agent], "display": agent}]},
            **dates}


def vrd_history(extra: dict) -> list[dict]:
    """VRd induction 2021-02-01 → 2021-07-31 (bortezomib, dexamethasone dated), progression 2024-05-01."""
    return [
        {"resourceType": "Patient", "id": "p", "birthDate": "1960-01-01"},
        {"resourceType": "Condition", "id": "c", "code": {"coding": [
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C90.00"}]}, "onsetDateTime": "2021-01-10"},
        statement("v", "bortezomib", effectivePeriod={"start": "2021-02-01", "end": "2021-07-31"}),
        statement("d", "dexamethasone", effectivePeriod={"start": "2021-02-01", "end": "2021-07-31"}),
        extra,
        {"resourceType": "Observation", "id": "pd", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "97509-4"}]}, "effectiveDateTime": "2024-05-01",
         "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "271299001"}]}},
    ]


def state_for(resources: list[dict]):
    return derive_state(build_record(resources, AS_OF, knowledge()), AS_OF)


def test_lenalidomide_known_only_by_date_asserted_joins_vrd_induction() -> None:
    st = state_for(vrd_history(statement("r", "lenalidomide", dateAsserted="2021-09-10")))
    assert st.prior_lines == 1 and "lenalidomide" in st.lines[0].agents
    assert not st.line_count_uncertain
    assert any("placed in line 1 by its dateAsserted 2021-09-10" in m for m in st.missing)


def test_invalid_start_date_with_an_end_joins_the_line() -> None:
    st = state_for(vrd_history(statement("r", "lenalidomide", effectivePeriod={"start": "2021-02-30",
                                                                               "end": "2021-07-31"})))
    assert st.prior_lines == 1 and "lenalidomide" in st.lines[0].agents
    assert any("placed in line 1 by its end date" in m for m in st.missing)


def test_asserted_far_from_any_line_is_listed_as_undated_and_uncertain() -> None:
    st = state_for(vrd_history(statement("r", "lenalidomide", dateAsserted="2023-03-01")))
    assert st.prior_lines == 1
    assert st.line_count_uncertain and any("listed as undated" in m for m in st.missing)
    from cds_service.render.state_card import detail_markdown, summary_text

    assert "line count uncertain" in summary_text(st) and len(summary_text(st)) < 140
    assert "Line count uncertain" in detail_markdown(st)


def test_no_date_at_all_is_uncertain() -> None:
    st = state_for(vrd_history(statement("r", "lenalidomide", effectivePeriod={"start": "not a date"})))
    assert st.prior_lines == 1 and st.line_count_uncertain


# ------------------------------------------------------------------- property (hypothesis)

AGENTS = ["lenalidomide", "bortezomib", "daratumumab", "carfilzomib", "pomalidomide", "cyclophosphamide"]
days = st.integers(min_value=0, max_value=3000)
BASE = date(2018, 1, 1)


@st.composite
def histories(draw):
    meds: list[MedicationUse] = []
    for _ in range(draw(st.integers(1, 6))):
        start = BASE + timedelta(days=draw(days))
        length = draw(st.integers(1, 700))
        end = start + timedelta(days=length)
        agents = draw(st.lists(st.sampled_from(AGENTS), min_size=1, max_size=3, unique=True))
        stop = draw(st.sampled_from(["unknown", "completed", "toxicity", "progression"]))
        meds += regimen(agents, start.isoformat(), None if end > AS_OF else end.isoformat(),
                        ongoing=end > AS_OF, stop=stop)
    progs = [prog((BASE + timedelta(days=draw(days))).isoformat()) for _ in range(draw(st.integers(0, 3)))]
    return meds, progs


@st.composite
def undated_records(draw):
    m = med(draw(st.sampled_from(AGENTS)), None, status=draw(st.sampled_from(["active", "completed", "stopped"])),
            stop=draw(st.sampled_from(["unknown", "completed", "toxicity", "progression"])),
            kind=draw(st.sampled_from(["statement", "request", "administration"])))
    which = draw(st.sampled_from(["end", "asserted", "none"]))
    if which == "end":
        m.end = BASE + timedelta(days=draw(days))
    elif which == "asserted":
        m.asserted = BASE + timedelta(days=draw(days))
    return m


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), undated_records())
def test_an_undated_record_never_changes_the_line_count(history, extra) -> None:
    """By itself: a record stopped for progression on a known date is also progression evidence of
    that date (which may rightly start a new line); the comparison gives both charts that evidence,
    so only the undated course differs."""
    meds, progs = history
    evidence = extra.end or extra.asserted
    progs_before = [*progs, prog(evidence.isoformat())] if extra.stop_reason == "progression" and evidence else progs
    before = derive_state(record(meds, progressions=progs_before), AS_OF)
    after = derive_state(record([*meds, extra], progressions=progs_before), AS_OF)
    assert after.prior_lines == before.prior_lines
    assert [ln.start for ln in after.lines] == [ln.start for ln in before.lines]
