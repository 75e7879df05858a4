"""Cytogenetics precedence and negatives, salvage ASCT thresholds, age / frailty."""

from __future__ import annotations

import pytest

from cds_service.clinical.risk import cytogenetics, whole_months
from cds_service.clinical.state import derive_state
from tests.clinical_builders import AS_OF, asct, cond, d, ecog, fish, flatten, med, prog, record, regimen

# --- cytogenetics -------------------------------------------------------------------------


def test_untested_is_unknown_not_standard_risk():
    c = cytogenetics([])
    assert c.to_contract() == {"tested": False, "highRisk": None, "findings": [], "t11_14": None,
                                 "riskDefinition": "IMS-IMWG-2025"}


def test_documented_negatives_and_t11_14_false():
    c = cytogenetics([fish("del(17p)", False), fish("t(4;14)", False), fish("t(11;14)", False)])
    assert c.tested and c.high_risk is False and c.t11_14 is False
    assert c.findings == [] and set(c.negatives) == {"del(17p)", "t(4;14)", "t(11;14)"}


def test_primary_translocation_positive_at_any_time_stands():
    c = cytogenetics([fish("t(4;14)", True, "2019-01-01"), fish("t(4;14)", False, "2023-01-01")])
    assert c.findings == ["t(4;14)"] and c.high_risk is True
    c = cytogenetics([fish("t(11;14)", False, "2019-01-01"), fish("t(11;14)", True, "2023-01-01")])
    assert c.t11_14 is True and c.high_risk is False


def test_acquired_lesion_latest_result_counts():
    later_pos = cytogenetics([fish("del(17p)", False, "2019-01-01"), fish("del(17p)", True, "2023-01-01")])
    assert later_pos.findings == ["del(17p)"] and later_pos.high_risk is True
    later_neg = cytogenetics([fish("1q-gain", True, "2019-01-01"), fish("1q-gain", False, "2023-01-01")])
    assert later_neg.findings == [] and later_neg.negatives == ["1q-gain"]


def test_t14_20_and_del1p_are_high_risk_t11_14_is_not():
    assert cytogenetics([fish("t(14;20)", True)]).high_risk is True
    assert cytogenetics([fish("del(1p)", True)]).high_risk is True
    assert cytogenetics([fish("t(11;14)", True)]).high_risk is False


def test_unknown_abnormality_names_are_ignored():
    assert cytogenetics([fish("trisomy 9", True)]).tested is False


# --- transplant / salvage ASCT ----------------------------------------------------------------


def _asct_case(months_to_pd: int, maintenance: bool):
    meds = flatten(regimen(["bortezomib", "lenalidomide", "dexamethasone"], "2018-01-01", "2018-05-01"))
    if maintenance:
        meds.append(med("lenalidomide", "2018-09-01", None, ongoing=False, status="completed"))
        meds[-1].end = d("2018-09-01").replace(year=2018 + (months_to_pd + 6) // 12)
    y, m = divmod(7 - 1 + months_to_pd, 12)
    pd = d(f"{2018 + y}-{m + 1:02d}-10")
    st = derive_state(
        record(
            meds, transplants=[asct("2018-07-01")], progressions=[prog(pd.isoformat())], ecogs=[ecog("2018-01-01", 0)]
        ),
        AS_OF,
    )
    return st


@pytest.mark.parametrize(
    ("months", "maintenance", "expected", "t003"),
    [
        (12, True, "not-recommended", 36),
        (12, False, "not-recommended", 24),
        (20, True, "discuss", 36),
        (20, False, "discuss", 24),
        (30, True, "discuss", 36),
        (30, False, "candidate", 24),
        (40, True, "candidate", 36),
        (40, False, "candidate", 24),
    ],
)
def test_salvage_asct_thresholds(months, maintenance, expected, t003):
    st = _asct_case(months, maintenance)
    t = st.transplant
    assert t.prior_asct and t.asct_date == d("2018-07-01")
    assert t.maintenance_after_asct is maintenance
    assert t.months_asct_to_progression == months
    assert t.salvage_asct == expected
    assert t.threshold_003_months == t003
    assert "18 months" in t.salvage_reason and f"{t003} months" in t.salvage_reason
    assert st.to_contract()["transplant"] == {
        "priorASCT": True,
        "monthsAsctToProgression": months,
        "salvageASCT": expected,
    }


def test_no_progression_after_asct_is_none():
    meds = flatten(
        regimen(["bortezomib", "lenalidomide"], "2022-01-01", "2022-05-01"),
        med("lenalidomide", "2022-09-01", ongoing=True),
    )
    st = derive_state(record(meds, transplants=[asct("2022-07-01")]), AS_OF)
    assert st.transplant.prior_asct and st.transplant.salvage_asct is None
    assert st.transplant.months_asct_to_progression is None


def test_unknown_kind_transplant_counts_allogeneic_does_not():
    meds = [med("lenalidomide", "2021-01-01", ongoing=True)]
    assert derive_state(record(meds, transplants=[asct("2020-07-01", "unknown")]), AS_OF).transplant.prior_asct
    assert not derive_state(record(meds, transplants=[asct("2020-07-01", "allogeneic")]), AS_OF).transplant.prior_asct


def test_never_transplanted_relapsed_candidate_only_if_eligible():
    meds = [med("lenalidomide", "2021-01-01", "2023-01-01")]
    fit = derive_state(
        record(meds, progressions=[prog("2022-12-01")], birth="1965-01-01", ecogs=[ecog("2022-01-01", 1)]), AS_OF
    )
    assert fit.transplant.transplant_eligible is True and fit.transplant.salvage_asct == "candidate"
    old = derive_state(
        record(meds, progressions=[prog("2022-12-01")], birth="1950-01-01", ecogs=[ecog("2022-01-01", 1)]), AS_OF
    )
    assert old.transplant.transplant_eligible is False and old.transplant.salvage_asct == "not-recommended"
    no_ecog = derive_state(record(meds, progressions=[prog("2022-12-01")], birth="1965-01-01"), AS_OF)
    assert no_ecog.transplant.salvage_asct == "candidate"
    assert "confirm fitness" in no_ecog.transplant.salvage_reason
    frail = derive_state(
        record(meds, progressions=[prog("2022-12-01")], birth="1965-01-01", ecogs=[ecog("2022-01-01", 3)]), AS_OF
    )
    assert frail.transplant.salvage_asct == "not-recommended"
    unknown = derive_state(record(meds, progressions=[prog("2022-12-01")], birth=None), AS_OF)
    assert unknown.transplant.salvage_asct is None
    not_relapsed = derive_state(record(meds, birth="1965-01-01", ecogs=[ecog("2022-01-01", 1)]), AS_OF)
    assert not_relapsed.transplant.salvage_asct is None


def test_whole_months_floor():
    assert whole_months(d("2020-01-15"), d("2021-07-14")) == 17
    assert whole_months(d("2020-01-15"), d("2021-07-15")) == 18


# --- age / frailty ----------------------------------------------------------------------------


def test_frailty_from_ecog_and_conditions():
    meds = [med("lenalidomide", "2021-01-01", ongoing=True)]
    st = derive_state(record(meds, ecogs=[ecog("2021-01-01", 2), ecog("2022-01-01", 1)]), AS_OF)
    assert st.ecog == 1 and st.frail is False
    st = derive_state(record(meds, ecogs=[ecog("2021-01-01", 0), ecog("2022-01-01", 3)]), AS_OF)
    assert st.ecog == 3 and st.frail is True
    st = derive_state(record(meds, ecogs=[ecog("2022-01-01", 0)], conditions=[cond("frailty")]), AS_OF)
    assert st.frail is True
    st = derive_state(record(meds), AS_OF)
    assert st.frail is None and st.to_contract()["frail"] is None
    assert any("ECOG" in m for m in st.missing)


def test_age_and_over_75_and_eligibility():
    meds = [med("lenalidomide", "2021-01-01", ongoing=True)]
    st = derive_state(record(meds, birth="1950-11-02", ecogs=[ecog("2022-01-01", 0)]), AS_OF)
    assert st.age == 75 and st.over_75 is False and st.transplant.transplant_eligible is False
    st = derive_state(record(meds, birth="1950-11-01"), AS_OF)
    assert st.age == 76 and st.over_75 is True
    st = derive_state(record(meds, birth="1956-11-01", ecogs=[ecog("2022-01-01", 1)]), AS_OF)
    assert st.age == 70 and st.transplant.transplant_eligible is True
    st = derive_state(record(meds, birth=None), AS_OF)
    assert st.age is None and st.over_75 is None


def test_pcl_extramedullary_neuropathy_from_conditions():
    meds = [med("lenalidomide", "2021-01-01", ongoing=True)]
    st = derive_state(
        record(meds, conditions=[cond("plasma-cell-leukemia"), cond("extramedullary"), cond("neuropathy")]), AS_OF
    )
    assert st.plasma_cell_leukemia and st.extramedullary and st.neuropathy
    c = st.to_contract()
    assert c["plasmaCellLeukemia"] is True and c["extramedullary"] is True
    st = derive_state(record(meds, conditions=[cond("neuropathy", active=False)]), AS_OF)
    assert not st.neuropathy
