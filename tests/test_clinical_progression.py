"""IMWG progressive disease from serum M-protein, and progression episodes."""

from __future__ import annotations

from cds_service.clinical.progression import episodes, m_protein_progressions
from cds_service.clinical.state import derive_state
from tests.clinical_builders import AS_OF, d, flatten, med, mprot, prog, record, regimen


def test_rise_of_25_percent_and_half_gram_is_pd_dated_first_qualifying_value():
    series = [
        mprot("2021-01-01", 3.0),
        mprot("2021-04-01", 1.0),
        mprot("2021-07-01", 0.4),  # nadir
        mprot("2021-10-01", 0.9),  # +0.5, +125 %: first qualifying
        mprot("2021-11-01", 1.2),  # confirms
    ]
    ev = m_protein_progressions(series)
    assert len(ev) == 1
    assert ev[0].date == d("2021-10-01")
    assert "confirmed" in ev[0].detail and "unconfirmed" not in ev[0].detail


def test_rise_below_half_gram_is_not_pd():
    series = [mprot("2021-01-01", 1.0), mprot("2021-04-01", 0.3), mprot("2021-07-01", 0.7), mprot("2021-10-01", 0.75)]
    assert m_protein_progressions(series) == []


def test_rise_of_half_gram_but_below_25_percent_is_not_pd():
    series = [mprot("2021-01-01", 4.0), mprot("2021-04-01", 3.0), mprot("2021-07-01", 3.6), mprot("2021-10-01", 3.7)]
    assert m_protein_progressions(series) == []


def test_high_nadir_needs_one_gram():
    series = [mprot("2021-01-01", 6.0), mprot("2021-04-01", 6.8), mprot("2021-07-01", 6.9)]
    assert m_protein_progressions(series) == []  # +0.9 from nadir 6.0
    series = [mprot("2021-01-01", 6.0), mprot("2021-04-01", 7.6), mprot("2021-07-01", 7.8)]
    assert len(m_protein_progressions(series)) == 1


def test_transient_blip_is_ignored_and_single_last_value_is_accepted_unconfirmed():
    blip = [mprot("2021-01-01", 0.2), mprot("2021-02-01", 0.8), mprot("2021-03-01", 0.2)]
    assert m_protein_progressions(blip) == []
    last = [mprot("2021-01-01", 0.2), mprot("2021-02-01", 0.2), mprot("2021-03-01", 0.8)]
    ev = m_protein_progressions(last)
    assert len(ev) == 1 and "not yet confirmed" in ev[0].detail


def test_units_g_per_l_are_converted():
    series = [mprot("2021-01-01", 3.0, "g/L"), mprot("2021-02-01", 7.0, "g/L"), mprot("2021-03-01", 7.5, "g/L")]
    ev = m_protein_progressions(series)  # 0.3 → 0.7 g/dL: +0.4 only
    assert ev == []
    series = [mprot("2021-01-01", 3.0, "g/L"), mprot("2021-02-01", 9.0, "g/L"), mprot("2021-03-01", 9.5, "g/L")]
    assert len(m_protein_progressions(series)) == 1


def test_second_pd_after_new_response():
    series = [
        mprot("2020-01-01", 0.2),
        mprot("2020-04-01", 1.0),
        mprot("2020-05-01", 1.4),  # PD 1
        mprot("2020-08-01", 0.3),
        mprot("2020-11-01", 0.1),
        mprot("2021-02-01", 0.7),  # PD 2
        mprot("2021-03-01", 0.9),
    ]
    ev = m_protein_progressions(series)
    assert [e.date for e in ev] == [d("2020-04-01"), d("2021-02-01")]


def test_m_protein_pd_makes_agent_refractory():
    meds = flatten(regimen(["lenalidomide", "dexamethasone"], "2021-01-01", ongoing=True))
    labs = [mprot("2021-01-01", 2.5), mprot("2021-06-01", 0.3), mprot("2022-06-01", 0.9), mprot("2022-07-01", 1.1)]
    st = derive_state(record(meds, m_protein=labs), AS_OF)
    assert st.agents["lenalidomide"].status == "refractory"
    assert st.agents["lenalidomide"].progression_date == d("2022-06-01")
    assert st.relapsed
    # a rise below 0.5 g/dL: not refractory
    labs = [mprot("2021-01-01", 2.5), mprot("2021-06-01", 0.3), mprot("2022-06-01", 0.6), mprot("2022-07-01", 0.7)]
    st = derive_state(record(meds, m_protein=labs), AS_OF)
    assert st.agents["lenalidomide"].status == "exposed"
    assert st.on_first_line


def test_events_of_one_relapse_form_one_episode():
    evs = [prog("2022-01-10"), prog("2022-02-01", "condition-relapse"), prog("2022-09-01")]
    eps = episodes(evs)
    assert [e[0].date for e in eps] == [d("2022-01-10"), d("2022-09-01")]


def test_progression_before_first_line_is_not_relapse():
    st = derive_state(
        record([med("lenalidomide", "2021-01-01", ongoing=True)], progressions=[prog("2020-12-20")]), AS_OF
    )
    assert not st.relapsed and st.on_first_line
    assert st.agents["lenalidomide"].status == "exposed"


def test_odd_values_do_not_crash():
    series = [mprot("2021-01-01", float("nan")), mprot("2021-02-01", -1.0), mprot("2021-03-01", 0.5)]
    series[0].value = "abc"  # type: ignore[assignment]
    assert m_protein_progressions(series) == []


def test_single_rise_followed_by_new_therapy_counts_as_pd():
    series = [mprot("2025-01-01", 0.2), mprot("2025-03-01", 0.9), mprot("2025-05-01", 0.4)]
    assert m_protein_progressions(series) == []  # a blip without action
    ev = m_protein_progressions(series, [d("2025-03-20")])
    assert [e.date for e in ev] == [d("2025-03-01")] and "new therapy" in ev[0].detail
    meds = flatten(
        med("lenalidomide", "2023-01-01", "2025-03-10"),
        regimen(["daratumumab", "bortezomib"], "2025-03-20", ongoing=True),
    )
    st = derive_state(record(meds, m_protein=series), AS_OF)
    assert st.agents["lenalidomide"].status == "refractory"
    assert st.agents["daratumumab"].status == "exposed"


def test_point_statement_stopped_for_progression_is_refractory_without_a_fake_early_date():
    meds = flatten(
        regimen(["bortezomib", "lenalidomide"], "2023-02-06", "2023-06-26", stop="completed"),
        med("lenalidomide", "2023-07-10", "2023-07-10", stop="progression", status="stopped"),
    )
    st = derive_state(record(meds), AS_OF)
    assert st.agents["lenalidomide"].status == "refractory"
    assert st.agents["bortezomib"].status == "exposed"  # no progression dated 14 days after it
    assert st.prior_lines == 1
    assert st.relapsed and not st.on_first_line


# --- free light chains and urine M-protein (IMWG) -------------------------------------------------

def _flc(day: str, value: float, chain: str):
    from cds_service.record.model import LabValue
    return LabValue(date=d(day), value=value, unit="mg/L", source=f"Observation/{chain}-{day}",
                    code={"kappa": "36916-5", "lambda": "33944-0"}[chain])


def _pairs(rows):
    out = []
    for day, k, lam in rows:
        out += [_flc(day, k, "kappa"), _flc(day, lam, "lambda")]
    return out


def test_dflc_rise_of_25_percent_and_over_100_mg_l_is_pd():
    from cds_service.clinical.progression import flc_progressions
    ev = flc_progressions(_pairs([("2025-01-01", 800, 10), ("2025-06-01", 40, 10), ("2026-01-01", 160, 10),
                                  ("2026-02-01", 200, 10)]))
    assert [e.date for e in ev] == [d("2026-01-01")] and "kappa involved" in ev[0].detail
    # +100 mg/L exactly is not "> 10 mg/dL"
    assert flc_progressions(_pairs([("2025-06-01", 40, 10), ("2026-01-01", 140, 10), ("2026-02-01", 140, 10)])) == []


def test_involved_chain_is_the_one_higher_at_the_disease_peak():
    from cds_service.clinical.progression import flc_progressions
    # first pair drawn in remission with kappa slightly higher; lambda is the clone
    ev = flc_progressions(_pairs([("2025-01-01", 15, 12), ("2025-03-01", 14, 600), ("2025-09-01", 15, 20),
                                  ("2026-06-01", 15, 300), ("2026-07-01", 15, 350)]))
    assert [e.date for e in ev] == [d("2026-06-01")] and "lambda involved" in ev[0].detail


def test_flc_criteria_only_without_measurable_serum_or_urine_m_protein():
    from cds_service.clinical.progression import flc_progressions
    from cds_service.record.model import LabValue
    rows = _pairs([("2025-06-01", 40, 10), ("2026-01-01", 400, 10), ("2026-02-01", 450, 10)])
    assert flc_progressions(rows, [mprot("2025-06-01", 1.2)]) == []
    urine = [LabValue(date=d("2025-06-01"), value=350.0, unit="mg/24h", source="Observation/u", code="")]
    assert flc_progressions(rows, [], None, urine) == []
    assert len(flc_progressions(rows, [mprot("2025-06-01", 0.3)])) == 1


def _flc_record(flc, m_protein=None):
    from cds_service.record.model import PatientRecord
    return PatientRecord(flc=list(flc), m_protein=list(m_protein or []))


def test_one_light_chain_only_is_named_as_the_reason_flc_cannot_be_judged():
    from cds_service.clinical.progression import flc_gaps, flc_progressions
    kappa = [_flc("2025-06-01", 30, "kappa"), _flc("2026-06-01", 400, "kappa")]
    assert flc_progressions(kappa) == []
    (msg,) = flc_gaps(_flc_record(kappa))
    assert "κ free light chain rose from 30 mg/L (2025-06-01) to 400 mg/L (2026-06-01)" in msg
    assert "no λ result" in msg and "dFLC" in msg
    (flat,) = flc_gaps(_flc_record([_flc("2025-06-01", 30, "lambda"), _flc("2026-06-01", 35, "lambda")]))
    assert flat.startswith("λ free light chain results without κ")
    apart = [_flc("2025-06-01", 30, "kappa"), _flc("2025-06-03", 10, "lambda")]
    assert "not measured on the same day" in flc_gaps(_flc_record(apart))[0]
    assert flc_gaps(_flc_record(_pairs([("2025-06-01", 30, 10), ("2026-06-01", 40, 10)]))) == []
    # with measurable serum M-protein the FLC do not decide progression: nothing to say
    assert flc_gaps(_flc_record(kappa, [mprot("2025-06-01", 2.0)])) == []


def test_urine_m_protein_rise_of_25_percent_and_200_mg_is_pd():
    from cds_service.clinical.progression import urine_progressions
    from cds_service.record.model import LabValue

    def u(day, v):
        return LabValue(date=d(day), value=v, unit="mg/24h", source=f"Observation/u{day}", code="")
    ev = urine_progressions([u("2025-01-01", 900), u("2025-06-01", 100), u("2026-01-01", 300), u("2026-02-01", 350)])
    assert [e.date for e in ev] == [d("2026-01-01")] and "urine M-protein" in ev[0].detail
    assert urine_progressions([u("2025-06-01", 100), u("2026-01-01", 290), u("2026-02-01", 295)]) == []
    assert urine_progressions([u("2025-06-01", 1000), u("2026-01-01", 1210), u("2026-02-01", 1230)]) == []
