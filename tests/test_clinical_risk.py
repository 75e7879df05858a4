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
    # IMS/IMWG 2025: t(4;14) counts as high risk only with 1q gain / del(1p32)
    c = cytogenetics([fish("t(4;14)", True, "2019-01-01"), fish("t(4;14)", False, "2023-01-01"),
                      fish("1q-gain", True, "2019-01-01")])
    assert c.findings == ["t(4;14)", "1q-gain"] and c.high_risk is True
    c = cytogenetics([fish("t(11;14)", False, "2019-01-01"), fish("t(11;14)", True, "2023-01-01")])
    assert c.t11_14 is True and c.high_risk is False


def test_acquired_lesion_latest_result_counts():
    later_pos = cytogenetics([fish("del(17p)", False, "2019-01-01"), fish("del(17p)", True, "2023-01-01")])
    assert later_pos.findings == ["del(17p)"] and later_pos.high_risk is True
    later_neg = cytogenetics([fish("1q-gain", True, "2019-01-01"), fish("1q-gain", False, "2023-01-01")])
    assert later_neg.findings == [] and later_neg.negatives == ["1q-gain"]


def test_translocation_or_1q_alone_is_reported_but_not_high_risk():
    """IMS/IMWG 2025 (Avet-Loiseau, JCO 2025): the old list (seed 002) made t(4;14) or 1q alone high risk."""
    for ab in ("t(4;14)", "t(14;16)", "t(14;20)"):
        c = cytogenetics([fish(ab, True), fish("1q-gain", False), fish("del(1p)", False), fish("del(17p)", False)])
        assert c.findings == [ab] and c.high_risk is False and c.high_risk_reasons == []
        assert any(ab in n and "not high risk" in n for n in c.risk_notes)
    c = cytogenetics([fish("1q-gain", True), fish("del(17p)", False)])
    assert c.findings == ["1q-gain"] and c.high_risk is False
    assert any("1q gain alone" in n for n in c.risk_notes)
    assert c.to_contract()["riskDefinition"] == "IMS-IMWG-2025"


def test_translocation_with_1q_gain_or_del1p_is_high_risk():
    c = cytogenetics([fish("t(14;16)", True), fish("1q-gain", True)])
    assert c.high_risk is True and c.high_risk_reasons == ["t(14;16) with 1q gain"]
    c = cytogenetics([fish("t(14;20)", True), fish("del(1p)", True)])
    assert c.high_risk is True and c.high_risk_reasons == ["t(14;20) with del(1p32)"]


def test_translocation_with_unreported_chromosome_1_says_so():
    c = cytogenetics([fish("t(4;14)", True), fish("del(17p)", False)])
    assert c.high_risk is False
    assert any("1q gain and del(1p32) not reported" in n for n in c.risk_notes)


def _sized(abn: str, fraction: float | None, day: str = "2020-01-10", allelic: str | None = None):
    f = fish(abn, True, day)
    f.clonal_fraction = fraction
    f.allelic = allelic
    return f


def test_del17p_clone_size_threshold_20_percent():
    assert cytogenetics([_sized("del(17p)", 0.45)]).high_risk_reasons == ["del(17p) in 45 % of plasma cells"]
    assert cytogenetics([_sized("del(17p)", 0.20)]).high_risk is True
    small = cytogenetics([_sized("del(17p)", 0.12)])
    assert small.high_risk is False and small.del17p_fraction == 12.0 and small.findings == ["del(17p)"]
    assert any("12 %" in n and "below 20 %" in n for n in small.risk_notes)
    unsized = cytogenetics([_sized("del(17p)", None)])
    assert unsized.high_risk is True and unsized.del17p_fraction is None
    assert unsized.high_risk_reasons == ["del(17p), clone size not reported"]
    assert any("clone size not reported" in n for n in unsized.risk_notes)
    # the latest positive result that reports a size decides
    later = cytogenetics([_sized("del(17p)", 0.10, "2019-01-01"), _sized("del(17p)", 0.60, "2023-01-01")])
    assert later.del17p_fraction == 60.0 and later.high_risk is True


def test_tp53_mutation_is_high_risk_on_its_own_and_not_a_cytogenetic_finding():
    c = cytogenetics([fish("TP53-mutation", True), fish("del(17p)", False)])
    assert c.high_risk is True and c.tp53_mutation is True and c.high_risk_reasons == ["TP53 mutation"]
    assert c.findings == [] and "TP53-mutation" not in c.to_contract()["findings"]


def test_del1p32_biallelic_or_with_1q_gain():
    assert cytogenetics([_sized("del(1p)", None, allelic="bi")]).high_risk_reasons == ["biallelic del(1p32)"]
    mono = cytogenetics([_sized("del(1p)", None, allelic="mono"), fish("1q-gain", False)])
    assert mono.high_risk is False and any("monoallelic" in n for n in mono.risk_notes)
    with_1q = cytogenetics([_sized("del(1p)", None, allelic="mono"), fish("1q-gain", True)])
    assert with_1q.high_risk_reasons == ["del(1p32) with 1q gain"]
    unknown = cytogenetics([_sized("del(1p)", None)])
    assert unknown.high_risk is False and any("biallelic" in n and "not reported" in n for n in unknown.risk_notes)


def _lab(day: str, value: float, unit: str, code: str):
    from cds_service.record.model import LabValue
    return LabValue(date=d(day), value=value, unit=unit, source=f"Observation/{code}-{day}", code=code)


def test_beta2_microglobulin_with_normal_creatinine():
    b2m = [_lab("2026-09-01", 6.2, "mg/L", "1952-1")]
    ok = cytogenetics([fish("del(17p)", False)], b2m, [_lab("2026-09-03", 0.9, "mg/dL", "2160-0")])
    assert ok.high_risk is True
    assert ok.high_risk_reasons == ["β2-microglobulin 6.2 mg/L (2026-09-01) with creatinine 0.9 mg/dL"]
    renal = cytogenetics([fish("del(17p)", False)], b2m, [_lab("2026-09-03", 2.1, "mg/dL", "2160-0")])
    assert renal.high_risk is False and any("renal" in n for n in renal.risk_notes)
    far = cytogenetics([fish("del(17p)", False)], b2m, [_lab("2026-01-03", 0.8, "mg/dL", "2160-0")])
    assert far.high_risk is False and any("no creatinine" in n for n in far.risk_notes)
    low = cytogenetics([fish("del(17p)", False)], [_lab("2026-09-01", 5.4, "mg/L", "1952-1")],
                       [_lab("2026-09-01", 0.9, "mg/dL", "2160-0")])
    assert low.high_risk is False and low.risk_notes == []
    # without FISH, beta-2-microglobulin alone can meet the definition; below it risk stays unknown
    alone = cytogenetics([], b2m, [_lab("2026-09-01", 1.0, "mg/dL", "2160-0")])
    assert alone.tested is False and alone.high_risk is True
    assert cytogenetics([], [_lab("2026-09-01", 3.0, "mg/L", "1952-1")], []).high_risk is None


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
