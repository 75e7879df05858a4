"""rank_options: tiers per setting A-E, modifiers, availability, conflicts, and the never-preferred-
refractory property over generated states."""

from __future__ import annotations

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rules_builders import knowledge, settings, state

from cds_service.clinical.model import Cytogenetics, TransplantState
from cds_service.clinical.options import rank_options, rules_for

K = knowledge()


def tiers(d):
    out = {"preferred": [], "other": [], "if-unavailable": []}
    for o in d.options:
        out[o.tier].append(o.regimen)
    return out


def avoid(d):
    return {a.regimen: a.reason for a in d.avoid}


def decide(s, **kw):
    return rank_options(s, K, settings(**kw))


# --- A ---------------------------------------------------------------------------------------------
def test_a_len_sensitive_prefers_drd_then_krd_with_grades():
    d = decide(state(lines=1, exposed=("bortezomib", "lenalidomide")))
    assert d.setting == "first-relapse-len-sensitive"
    t = tiers(d)
    assert t["preferred"][:2] == ["DRd", "KRd"]
    assert {"DVd", "Kd", "DKd", "IsaKd", "IRd", "EloRd"} <= set(t["other"])
    assert {"Rd", "Vd", "VCd", "VTd", "VMP"} <= set(t["if-unavailable"])
    grades = {o.regimen: o.grade for o in d.options}
    assert grades["DRd"] == "1A" and grades["KRd"] == "1A" and grades["IRd"] == "1B"
    assert d.options[0].rank == 1 and [o.rank for o in d.options] == list(range(1, len(d.options) + 1))
    # every option cites a work one click away (a DOI/PubMed record), never a search
    assert all(any(s["url"] for s in o.sources) for o in d.options)
    assert not any("?term=" in (s["url"] or "") for o in d.options for s in o.sources)


def test_a_anti_cd38_exposed_not_refractory_keeps_anti_cd38_regimens_and_puts_krd_first():
    d = decide(state(lines=1, exposed=("daratumumab", "bortezomib", "lenalidomide")))
    t = tiers(d)
    assert t["preferred"] == ["KRd", "DRd"]
    assert {"DKd", "IsaKd", "DVd"} <= set(t["other"])
    assert not d.avoid


def test_a_bortezomib_refractory_moves_bortezomib_regimens_to_avoid():
    d = decide(state(lines=1, refractory=("bortezomib",), exposed=("cyclophosphamide",)))
    assert avoid(d)["DVd"] == "bortezomib-refractory"
    assert "Vd" in avoid(d) and "VCd" in avoid(d)


# --- B ---------------------------------------------------------------------------------------------
def test_b_len_refractory_prefers_pvd_dkd_isakd_with_dvd_shown_high_and_conflict():
    d = decide(state(lines=1, refractory=("lenalidomide",), exposed=("bortezomib",)))
    assert d.setting == "first-relapse-len-refractory"
    t = tiers(d)
    # CARTITUDE-4 / MajesTEC-3 (US labels from 1 prior line) lead; then 003's [1A] regimens in order
    assert t["preferred"][:2] == ["cilta-cel", "Tec-Dara"]
    assert [r for r in t["preferred"] if r in ("PVd", "DKd", "IsaKd")] == ["PVd", "DKd", "IsaKd"]
    assert "DVd" in t["preferred"]
    assert {o.regimen: o.grade for o in d.options}["DVd"] == "1B"
    assert "dvd-vs-003-1a" in d.conflicts
    assert {"Kd", "KPd", "DPd", "IPd"} <= set(t["other"])
    for reg in ("DRd", "KRd", "IRd", "EloRd", "Rd"):
        assert avoid(d)[reg] == "lenalidomide-refractory"


def test_b_pomalidomide_in_len_refractory_is_preferred_agent_level_not_class_level():
    d = decide(state(lines=1, refractory=("lenalidomide",)))
    assert "PVd" in tiers(d)["preferred"]


def test_b_progression_on_maintenance_counts_as_len_refractory():
    d = decide(state(lines=1, exposed=("lenalidomide", "bortezomib"), progressed_on_len_maintenance=True))
    assert d.setting == "first-relapse-len-refractory"
    assert avoid(d)["DRd"] == "lenalidomide-refractory"
    assert "maintenance" in (next(a for a in d.avoid if a.regimen == "DRd").note or "")


def test_b_recent_lenalidomide_exposure_is_chosen_as_refractory_and_says_why():
    d = decide(state(lines=1, exposed=("lenalidomide", "bortezomib"), len_recent_exposure=True))
    assert d.setting == "first-relapse-len-refractory"
    a = next(a for a in d.avoid if a.regimen == "DRd")
    assert a.reason == "lenalidomide-refractory" and "6 months" in a.note


def test_b_frail_puts_all_oral_ipd_first():
    d = decide(state(lines=1, refractory=("lenalidomide",), frail=True))
    assert d.options[0].regimen == "IPd" and d.options[0].tier == "preferred"


def test_b_anti_cd38_exposed_keeps_anti_cd38_and_names_kpd():
    d = decide(state(lines=1, refractory=("lenalidomide",), exposed=("daratumumab",)))
    t = tiers(d)
    assert "DKd" in t["preferred"] and t["other"][0] == "KPd"


# --- C ---------------------------------------------------------------------------------------------
def test_c_after_drd_pi_based_without_daratumumab():
    d = decide(state(lines=1, refractory=("lenalidomide", "daratumumab"), frontline_anti_cd38="with-lenalidomide"))
    assert d.setting == "first-relapse-after-anti-cd38" and d.variant == "after-lenalidomide-based"
    t = tiers(d)
    assert t["preferred"][0] == "KPd"
    assert {"PVd", "Kd", "VCd"} <= set(t["preferred"])
    # VMP: listed by IMWG 2021 after D-Rd for MAIA's transplant-ineligible patients, not first for
    # everyone (melphalan before T-cell redirection; docs/clinical-rules.md section C)
    assert {"EloVd", "SVd", "IPd", "VMP"} <= set(t["other"])
    assert avoid(d)["DKd"] == "daratumumab-refractory"
    assert avoid(d)["DRd"] == "lenalidomide-refractory"


def test_c_isatuximab_after_daratumumab_is_never_preferred_and_conflict_is_shown():
    d = decide(state(lines=1, refractory=("lenalidomide", "daratumumab")))
    t = tiers(d)
    assert "IsaPd" in t["other"] and "IsaKd" in t["other"]
    assert not {"IsaPd", "IsaKd"} & set(t["preferred"])
    assert "isatuximab-after-daratumumab" in d.conflicts


def test_c_after_dvmp_lenalidomide_based_krd_if_fit():
    d = decide(state(lines=1, refractory=("daratumumab",), exposed=("bortezomib", "melphalan"),
                     frontline_anti_cd38="with-bortezomib-alkylator"))
    assert d.variant == "after-bortezomib-alkylator"
    assert tiers(d)["preferred"] == ["KRd"]


def test_c_after_dvmp_frail_or_over_75_gets_rd_ird_elord():
    for kw in ({"frail": True}, {"over_75": True}, {"age": 79}):
        d = decide(state(lines=1, refractory=("daratumumab",), exposed=("bortezomib",), **kw))
        t = tiers(d)
        assert set(t["preferred"]) == {"Rd", "IRd", "EloRd"}, kw
        assert "KRd" in t["other"]


# --- D ---------------------------------------------------------------------------------------------
def test_d_later_relapse_trial_then_isapd_dkd():
    d = decide(state(lines=2, exposed=("bortezomib", "lenalidomide")))
    assert d.setting == "later-relapse"
    t = tiers(d)
    assert t["preferred"][0] == "clinical-trial"
    assert [r for r in t["preferred"] if r in ("IsaPd", "DKd")] == ["IsaPd", "DKd"]
    assert {"DPd", "EloPd", "KPd"} <= set(t["other"]) | set(t["preferred"])
    assert {"PCd", "Pd"} <= set(t["if-unavailable"])


def test_d_pi_refractory_adds_imid_with_antibody():
    d = decide(state(lines=2, refractory=("bortezomib",), exposed=("lenalidomide",)))
    assert {"DRd", "DPd"} <= set(tiers(d)["preferred"])
    assert avoid(d)["DVd"] == "bortezomib-refractory"


def test_d_imid_refractory_adds_pi_with_antibody():
    d = decide(state(lines=2, refractory=("lenalidomide",), exposed=("bortezomib",)))
    assert {"DVd", "DKd"} <= set(tiers(d)["preferred"])
    assert avoid(d)["DRd"] == "lenalidomide-refractory"


def test_d_preferred_needs_two_drugs_not_refractory():
    rules = rules_for(K)
    s = state(lines=3, refractory=("lenalidomide", "bortezomib", "pomalidomide"))
    d = decide(s)
    # The two-active-drugs rule is for combinations: a CAR-T or bispecific is given alone and is
    # preferred on its own (CARTITUDE-4, KarMMa-3, MajesTEC-1 were monotherapy trials).
    combos = 0
    for o in d.options:
        comps = set(rules.regimens[o.regimen]["components"]) - {"dexamethasone", "prednisone"}
        if o.tier == "preferred" and comps and not rules.catalog.is_t_cell_redirecting(o.regimen):
            combos += 1
            assert len(comps - {"lenalidomide", "bortezomib", "pomalidomide"}) >= 2, o.regimen
    assert combos, [(o.regimen, o.tier) for o in d.options]
    assert any(o.tier == "preferred" and rules.catalog.is_t_cell_redirecting(o.regimen) for o in d.options)


def test_d_anti_cd38_refractory_never_prefers_an_anti_cd38_regimen():
    d = decide(state(lines=2, refractory=("daratumumab", "lenalidomide"), exposed=("bortezomib",)))
    rules = rules_for(K)
    for o in d.options:
        if o.tier == "preferred":
            assert not {"daratumumab", "isatuximab"} & set(rules.regimens[o.regimen]["components"])
    assert "isatuximab-after-daratumumab" in d.conflicts


# --- E ---------------------------------------------------------------------------------------------
def test_e_tcr_prefers_car_t_and_lists_bispecifics_beyond_seeds():
    d = decide(state(lines=4, refractory=("lenalidomide", "bortezomib", "daratumumab")))
    assert d.setting == "triple-class-refractory"
    t = tiers(d)
    assert set(t["preferred"][:2]) == {"ide-cel", "cilta-cel"}
    # Sd's label is penta-refractory after >= 4 therapies: this patient is not penta-refractory
    assert "Sd" not in t["preferred"] + t["other"]
    assert any("Sd not offered" in n for n in d.notes)
    beyond = {o.regimen for o in d.options if o.beyond_seeds}
    assert {"teclistamab", "elranatamab", "talquetamab"} <= beyond
    assert "VenVd" not in t["other"] + t["preferred"]


def test_e_without_car_t_moves_it_to_if_unavailable_and_bispecifics_lead_not_sd():
    """Without CAR-T the approved bispecifics lead; Sd (ORR 26 %) is never promoted above them and is
    offered only within its label (penta-refractory)."""
    d = decide(state(lines=4, refractory=("lenalidomide", "bortezomib", "daratumumab")), car_t_available=False)
    t = tiers(d)
    assert {"ide-cel", "cilta-cel"} <= set(t["if-unavailable"])
    assert t["preferred"][:3] == ["teclistamab", "elranatamab", "linvoseltamab"]
    assert "Sd" not in t["preferred"] + t["other"]
    car_t = next(o for o in d.options if o.regimen == "ide-cel")
    assert any("not available" in n for n in car_t.notes)


def test_e_panobinostat_and_vdt_pace_allowed_despite_bortezomib_but_never_preferred():
    """PanoVd only where panobinostat is still authorised: the US NDA was withdrawn in 2021, the EU
    label (>= 2 prior regimens incl. bortezomib and an IMiD) stands."""
    s = state(lines=4, refractory=("lenalidomide", "bortezomib", "daratumumab"))
    us, eu = tiers(decide(s)), tiers(decide(s, label_region="EU"))
    assert "VDT-PACE" in us["other"] and "VDT-PACE" in eu["other"]
    assert "PanoVd" in eu["other"]
    assert "PanoVd" not in {r for t in us.values() for r in t}


# --- modifiers ---------------------------------------------------------------------------------------
def t1114(value):
    return Cytogenetics(tested=True, findings=["t(11;14)"] if value else [], t11_14=value, high_risk=False)


def test_venvd_offered_with_t11_14_len_refractory_pi_sensitive():
    d = decide(state(lines=1, refractory=("lenalidomide",), exposed=("bortezomib",), cytogenetics=t1114(True)))
    assert "VenVd" in tiers(d)["other"]


def test_venetoclax_never_without_t11_14_and_vend_when_bortezomib_refractory():
    for s in (
        state(lines=1, refractory=("lenalidomide",), cytogenetics=t1114(False)),
        state(lines=1, refractory=("lenalidomide",), cytogenetics=Cytogenetics()),
    ):
        assert not {"VenVd", "Vend"} & {o.regimen for o in decide(s).options}
    d = decide(state(lines=2, refractory=("lenalidomide", "bortezomib"), cytogenetics=t1114(True)))
    assert "Vend" in tiers(d)["other"] and "VenVd" not in {o.regimen for o in d.options}


def test_venvd_with_t11_14_also_at_len_sensitive_first_relapse_marked_off_label():
    """t(11;14): a venetoclax regimen in every setting (was: only when lenalidomide-refractory)."""
    d = decide(state(lines=1, exposed=("lenalidomide", "bortezomib"), cytogenetics=t1114(True)))
    ven = next(o for o in d.options if o.regimen == "VenVd")
    assert ven.tier == "other" and ven.off_label == "US"


def test_plasma_cell_leukemia_or_extramedullary_puts_vdt_pace_first():
    for kw in ({"plasma_cell_leukemia": True}, {"extramedullary": True}):
        d = decide(state(lines=1, refractory=("lenalidomide",), **kw))
        assert d.options[0].regimen == "VDT-PACE" and d.options[0].tier == "preferred"


def test_frail_a_puts_ird_first():
    d = decide(state(lines=1, exposed=("bortezomib",), frail=True))
    assert d.options[0].regimen == "IRd"


def test_unavailable_agent_moves_its_regimens_to_if_unavailable_but_keeps_them():
    d = decide(state(lines=1, refractory=("lenalidomide",)), unavailable_agents=["carfilzomib"])
    t = tiers(d)
    assert {"DKd", "IsaKd", "Kd", "KPd"} <= set(t["if-unavailable"])
    assert "PVd" in t["preferred"]


def test_salvage_asct_candidate_is_an_option_and_not_recommended_goes_to_avoid():
    cand = TransplantState(prior_asct=True, months_asct_to_progression=48, maintenance_after_asct=True,
                           salvage_asct="candidate")
    d = decide(state(lines=1, exposed=("lenalidomide",), transplant=cand))
    assert "salvage-ASCT" in tiers(d)["other"]
    assert "salvage-asct-thresholds" in d.conflicts
    nope = TransplantState(prior_asct=True, months_asct_to_progression=12, salvage_asct="not-recommended")
    d = decide(state(lines=1, exposed=("lenalidomide",), transplant=nope))
    assert avoid(d)["salvage-ASCT"] == "remission-after-asct-under-18-months"


def test_salvage_asct_avoid_names_what_decided_it():
    """A long first remission after ASCT is never given as "remission under 18 months": at a later
    relapse the reason is the point of the disease course, and the 18- vs 36-month disagreement
    between the sources is not raised where the thresholds decide nothing."""
    later = TransplantState(prior_asct=True, months_asct_to_progression=31, maintenance_after_asct=True,
                            salvage_asct="not-recommended", salvage_why="relapse after 3 lines (an option at first relapse)")
    d = decide(state(lines=3, refractory=("lenalidomide", "pomalidomide"), exposed=("bortezomib",), transplant=later))
    reason = avoid(d)["salvage-ASCT"]
    assert reason == "salvage-asct-at-first-relapse-only", reason
    assert next(a.note for a in d.avoid if a.regimen == "salvage-ASCT").startswith("relapse after 3 lines")
    assert "salvage-asct-thresholds" not in d.conflicts
    unfit = TransplantState(prior_asct=True, months_asct_to_progression=130, maintenance_after_asct=False,
                            salvage_asct="not-recommended", salvage_why="not fit for high-dose therapy (ECOG 3, age 83)")
    d = decide(state(lines=1, exposed=("bortezomib",), transplant=unfit, ecog=3, age=83))
    assert avoid(d)["salvage-ASCT"] == "not-fit-for-salvage-asct"
    assert "salvage-asct-thresholds" not in d.conflicts


def test_not_relapsed_and_insufficient_data_give_no_options():
    assert decide(state(lines=1, relapsed=False, on_first_line=True)).options == []
    d = decide(state(lines=0, insufficient_data=True))
    assert d.setting == "insufficient-data" and d.options == [] and d.avoid == []


# --- property: never preferred with a refractory agent ---------------------------------------------------
AGENTS = ("lenalidomide", "pomalidomide", "thalidomide", "bortezomib", "carfilzomib", "ixazomib", "daratumumab",
          "isatuximab", "elotuzumab", "selinexor", "venetoclax", "panobinostat", "melphalan", "cyclophosphamide",
          "idecabtagene-vicleucel", "ciltacabtagene-autoleucel", "teclistamab", "belantamab-mafodotin",
          "dexamethasone")


@st.composite
def states(draw):
    statuses = draw(st.dictionaries(st.sampled_from(AGENTS), st.sampled_from(["exposed", "refractory"]), max_size=9))
    s = state(
        lines=draw(st.integers(min_value=0, max_value=6)),
        refractory=tuple(a for a, v in statuses.items() if v == "refractory"),
        exposed=tuple(a for a, v in statuses.items() if v == "exposed"),
        relapsed=draw(st.booleans()),
        progressed_on_len_maintenance=draw(st.sampled_from([None, True, False])),
        len_recent_exposure=draw(st.booleans()),
        frail=draw(st.sampled_from([None, True, False])),
        over_75=draw(st.sampled_from([None, True, False])),
        plasma_cell_leukemia=draw(st.booleans()),
        extramedullary=draw(st.booleans()),
        on_first_line=draw(st.booleans()),
        insufficient_data=draw(st.booleans()),
        cytogenetics=Cytogenetics(tested=True, t11_14=draw(st.sampled_from([None, True, False]))),
        transplant=TransplantState(
            prior_asct=draw(st.booleans()),
            months_asct_to_progression=draw(st.sampled_from([None, 6, 20, 30, 40])),
            maintenance_after_asct=draw(st.sampled_from([None, True, False])),
            salvage_asct=draw(st.sampled_from([None, "candidate", "discuss", "not-recommended"])),
        ),
    )
    if draw(st.booleans()):
        s.classes["anti-CD38"] = draw(st.sampled_from(["naive", "exposed", "refractory"]))
    return s


@hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=states(), car_t=st.booleans(), unavailable=st.lists(st.sampled_from(AGENTS), max_size=3))
def test_property_never_preferred_with_a_refractory_agent(s, car_t, unavailable):
    rules = rules_for(K)
    d = rank_options(s, K, settings(car_t_available=car_t, unavailable_agents=unavailable))
    refractory = {a for a, e in s.agents.items() if e.status == "refractory"} - {"dexamethasone", "prednisone"}
    if s.progressed_on_len_maintenance or s.len_recent_exposure:
        refractory.add("lenalidomide")
    for o in d.options:
        comps = set(rules.regimens[o.regimen]["components"])
        if o.tier == "preferred":
            assert not comps & refractory, (o.regimen, refractory)
            if s.classes.get("anti-CD38") == "refractory":
                assert not comps & {"daratumumab", "isatuximab"}, o.regimen
        if o.regimen == "VenVd":
            assert s.cytogenetics.t11_14 is True
    # shape: ranks contiguous, tiers in order, no regimen both offered and avoided
    assert [o.rank for o in d.options] == list(range(1, len(d.options) + 1))
    order = {"preferred": 0, "other": 1, "if-unavailable": 2}
    assert [order[o.tier] for o in d.options] == sorted(order[o.tier] for o in d.options)
    assert not {o.regimen for o in d.options} & {a.regimen for a in d.avoid if a.regimen != "salvage-ASCT"}


def test_steroid_refractoriness_never_blocks_a_regimen():
    """The state marks dexamethasone refractory when it was part of the failing line: irrelevant here."""
    d = decide(state(lines=2, refractory=("bortezomib", "carfilzomib", "dexamethasone"), exposed=("cyclophosphamide",)))
    t = tiers(d)
    assert "IsaPd" in t["preferred"] and {"DRd", "DPd"} <= set(t["preferred"])
    assert not any(a.reason == "dexamethasone-refractory" for a in d.avoid)
    assert {"DKd", "Kd", "KPd", "IsaKd", "DVd", "PVd", "SVd"} <= set(avoid(d))


def test_pcl_keeps_vdt_pace_listed_even_when_bortezomib_refractory_but_not_preferred():
    d = decide(state(lines=1, refractory=("lenalidomide", "bortezomib"), plasma_cell_leukemia=True))
    t = tiers(d)
    assert "VDT-PACE" in t["other"] and t["other"][0] == "VDT-PACE"
    assert "VDT-PACE" not in avoid(d)


def test_ecog_2_counts_as_frail_when_frailty_not_stated():
    d = decide(state(lines=1, exposed=("bortezomib",), ecog=2))
    assert d.options[0].regimen == "IRd"
    d = decide(state(lines=1, exposed=("bortezomib",), ecog=2, frail=False))  # the state's explicit verdict wins
    assert d.options[0].regimen == "DRd"


def test_d_clinical_trial_stays_first_for_frail_patients():
    d = decide(state(lines=2, refractory=("lenalidomide",), exposed=("bortezomib",), frail=True))
    assert [o.regimen for o in d.options[:2]] == ["clinical-trial", "IPd"]


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=states(), unavailable=st.lists(st.sampled_from(AGENTS), min_size=1, max_size=3))
def test_property_availability_never_hides_evidence(s, unavailable):
    """Availability only moves options between tiers: the same regimens are listed or avoided."""
    base = rank_options(s, K, settings())
    limited = rank_options(s, K, settings(car_t_available=False, unavailable_agents=unavailable))
    assert {o.regimen for o in base.options} == {o.regimen for o in limited.options}
    assert {a.regimen for a in base.avoid} == {a.regimen for a in limited.avoid}
    rules = rules_for(K)
    for o in limited.options:
        comps = set(rules.regimens[o.regimen]["components"])
        if comps & set(unavailable) or o.regimen in ("ide-cel", "cilta-cel"):
            assert o.tier == "if-unavailable", o.regimen
