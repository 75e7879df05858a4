"""T-cell redirection, labels per region, fitness and the corrected evidence: rules on hand-built states.

Each test names the clinical situation it guards; the same situations run end to end from FHIR
resources in tests/test_rules_tcr_e2e.py.
"""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rules_builders import draft, knowledge, record, settings, state, supportive

from cds_service.clinical.model import Cytogenetics, TcrTherapy
from cds_service.clinical.options import rank_options
from cds_service.config import ConfigError, load_settings
from cds_service.render.orders import order_cards
from cds_service.render.patient_view import patient_view_cards

K = knowledge()
TCR = dict(lines=4, refractory=("lenalidomide", "bortezomib", "daratumumab"), exposed=("pomalidomide",))
# after D-VRd induction and D-R maintenance: lenalidomide- and daratumumab-refractory at first relapse
AFTER_DR_MAINT = dict(lines=1, refractory=("lenalidomide", "daratumumab"), exposed=("bortezomib",),
                      progressed_on_len_maintenance=True, frontline_anti_cd38="with-lenalidomide")
LEN_REFRACTORY = dict(lines=1, refractory=("lenalidomide",), exposed=("bortezomib",), progressed_on_len_maintenance=True)


def decide(s, **kw):
    return rank_options(s, K, settings(**kw))


def tiers(d):
    out: dict[str, list[str]] = {"preferred": [], "other": [], "if-unavailable": []}
    for o in d.options:
        out[o.tier].append(o.regimen)
    return out


def opt(d, regimen):
    return next((o for o in d.options if o.regimen == regimen), None)


def avoid(d):
    return {a.regimen: a for a in d.avoid}


def tcr(agent, kind, target, line, outcome="refractory", start=date(2024, 1, 10), end=date(2024, 1, 10),
        progression=date(2024, 9, 1)):
    return TcrTherapy(agent=agent, kind=kind, target=target, start=start, end=end, line=line, outcome=outcome,
                      progression_date=progression if outcome == "refractory" else None)


# --- 1. first relapse, lenalidomide-refractory ------------------------------------------------------------
def test_len_refractory_first_relapse_offers_cilta_cel_and_tec_dara_in_the_us():
    d = decide(state(**LEN_REFRACTORY))
    t = tiers(d)
    assert t["preferred"][:2] == ["cilta-cel", "Tec-Dara"]
    assert opt(d, "cilta-cel").off_label is None and opt(d, "Tec-Dara").off_label is None
    # BVd: US label from 2 prior lines -> off-label at first relapse, shown under other and marked
    bvd = opt(d, "BVd")
    assert bvd.tier == "other" and bvd.off_label == "US" and any("off-label in US" in n for n in bvd.notes)
    assert opt(d, "BPd") is None and any("BPd not offered" in n for n in d.notes)  # never approved in the US


def test_len_refractory_first_relapse_in_the_eu_offers_bvd_and_bpd_not_tec_dara():
    d = decide(state(**LEN_REFRACTORY), label_region="EU")
    t = tiers(d)
    assert t["preferred"][0] == "cilta-cel"
    assert {"BVd", "BPd"} <= set(t["preferred"])
    assert opt(d, "Tec-Dara") is None and any("Tec-Dara not offered" in n and "CHMP" in n for n in d.notes)


def test_after_dvrd_and_dr_maintenance_cilta_cel_yes_tec_dara_never():
    """MajesTEC-3 excluded anti-CD38-refractory patients; DREAMM-7 excluded daratumumab-refractory ones."""
    for region in ("US", "EU"):
        d = decide(state(**AFTER_DR_MAINT), label_region=region)
        assert d.setting == "first-relapse-after-anti-cd38"
        assert tiers(d)["preferred"][0] == "cilta-cel"
        assert avoid(d)["Tec-Dara"].reason == "outside-MajesTEC-3-population"
        assert "anti-CD38-refractory" in avoid(d)["Tec-Dara"].note
        assert avoid(d)["BVd"].reason == "outside-DREAMM-7-population"
    assert opt(decide(state(**AFTER_DR_MAINT), label_region="EU"), "BPd") is not None


def test_bcma_exposed_patient_gets_no_tec_dara():
    s = state(lines=2, refractory=("lenalidomide",), exposed=("bortezomib", "belantamab-mafodotin"))
    s.targets = {"BCMA": "exposed", "GPRC5D": "naive"}
    assert avoid(decide(s))["Tec-Dara"].reason == "outside-MajesTEC-3-population"


def test_cilta_cel_label_needs_lenalidomide_refractoriness():
    d = decide(state(lines=2, refractory=("bortezomib",), exposed=("lenalidomide", "daratumumab")))
    cilta = opt(d, "cilta-cel")
    assert cilta.tier == "other" and cilta.off_label == "US" and any("lenalidomide-refractory" in n for n in cilta.notes)
    assert opt(d, "ide-cel").off_label is None  # 2 prior lines, triple-class exposed: on-label


# --- 2. after T-cell redirection ---------------------------------------------------------------------------
def test_after_bcma_car_t_failure_no_car_t_is_offered_and_talquetamab_leads():
    s = state(**TCR)
    s.tcr_history = [tcr("idecabtagene-vicleucel", "CAR-T", "BCMA", 4)]
    s.targets = {"BCMA": "refractory", "GPRC5D": "naive"}
    d = decide(s)
    assert d.options[0].regimen == "talquetamab" and d.options[0].tier == "preferred"
    offered = {o.regimen for o in d.options}
    assert not offered & {"ide-cel", "cilta-cel", "teclistamab", "elranatamab", "linvoseltamab", "BVd", "BPd", "Tec-Dara"}
    a = avoid(d)["cilta-cel"]
    assert a.reason == "BCMA-refractory" and "idecabtagene-vicleucel" in a.note and "2024-09-01" in a.note


def test_after_elranatamab_progression_teclistamab_is_not_offered_and_its_order_is_critical():
    s = state(lines=5, refractory=("lenalidomide", "bortezomib", "daratumumab", "elranatamab"))
    d = decide(s)  # the target is derived from the refractory agent even without a T-cell history
    assert "teclistamab" not in {o.regimen for o in d.options}
    assert d.options[0].regimen == "talquetamab"
    cards = order_cards(s, [draft("MedicationRequest/tec", ["teclistamab"])], K, settings(), "order-select",
                        record=record(supportive("zoster-prophylaxis"), supportive("pjp-prophylaxis")))
    codes = [c["extension"]["org.mmcds.card"]["code"] for c in cards]
    assert codes[0] == "same-target-after-failure" and "refractory-agent-ordered" not in codes
    c = cards[0]
    assert c["indicator"] == "critical" and "elranatamab" in c["detail"] and "BCMA" in c["summary"]
    assert c["suggestions"][0]["label"].startswith("Replace with talquetamab")


def test_after_teclistamab_an_elranatamab_order_raises_same_target():
    s = state(lines=5, refractory=("lenalidomide", "bortezomib", "daratumumab"))
    s.tcr_history = [tcr("teclistamab", "bispecific", "BCMA", 5, start=date(2024, 1, 1), end=date(2024, 8, 20))]
    s.targets = {"BCMA": "refractory", "GPRC5D": "naive"}
    cards = order_cards(s, [draft("MedicationRequest/elra", ["elranatamab"])], K, settings(), "order-sign")
    assert "same-target-after-failure" in [c["extension"]["org.mmcds.card"]["code"] for c in cards]


def test_car_t_at_least_six_months_after_a_bispecific():
    s = state(**TCR)
    s.as_of = date(2024, 4, 1)
    s.tcr_history = [tcr("talquetamab", "bispecific", "GPRC5D", 4, start=date(2023, 10, 1), end=date(2024, 1, 15))]
    s.targets = {"BCMA": "naive", "GPRC5D": "refractory"}
    d = decide(s)
    for car_t in ("cilta-cel", "ide-cel"):
        o = opt(d, car_t)
        assert o.tier == "other" and any("6 months" in n and "2024-07" in n for n in o.notes), o.notes
    assert "talquetamab" not in {o.regimen for o in d.options}


def test_car_t_before_a_bcma_bispecific_and_alkylator_warning_where_t_cell_redirection_is_offered():
    d = decide(state(**TCR))
    t = tiers(d)["preferred"]
    assert t.index("cilta-cel") < t.index("teclistamab") and t.index("ide-cel") < t.index("teclistamab")
    vdt = opt(d, "VDT-PACE")
    assert any("bendamustine" in n for n in vdt.notes)


# --- 3. selinexor-dexamethasone ------------------------------------------------------------------------------
PENTA = dict(lines=5, refractory=("lenalidomide", "pomalidomide", "bortezomib", "carfilzomib", "daratumumab"))


def penta_state(**kw):
    s = state(**PENTA, **kw)
    s.penta_refractory = True
    return s


def test_sd_within_its_label_ranks_below_every_t_cell_redirecting_option():
    for kw in ({}, {"car_t_available": False}):
        d = decide(penta_state(), **kw)
        ranks = {o.regimen: o.rank for o in d.options}
        assert "Sd" in ranks and opt(d, "Sd").tier == "other"
        assert all(ranks["Sd"] > ranks[r] for r in ("teclistamab", "elranatamab", "talquetamab"))


def test_sd_label_counts_prior_therapies_as_lines_of_therapy():
    """Sd's "at least 4 prior therapies" is read as IMWG lines: penta-refractory after 3 lines whose
    first line held several regimens (VRd induction, ASCT, lenalidomide maintenance) is outside the
    label and Sd is not offered; after 4 lines it is."""
    three = [["bortezomib", "lenalidomide", "dexamethasone", "melphalan"], ["carfilzomib", "pomalidomide", "dexamethasone"],
             ["daratumumab", "pomalidomide", "dexamethasone"]]
    s = state(lines=three, refractory=PENTA["refractory"])
    s.penta_refractory = True
    d = decide(s, car_t_available=False)
    assert "Sd" not in {o.regimen for o in d.options}
    assert any("Sd" in n and "3 prior lines, label from 4" in n for n in d.notes), d.notes
    s4 = state(lines=[*three, ["elotuzumab", "pomalidomide", "dexamethasone"]], refractory=PENTA["refractory"])
    s4.penta_refractory = True
    assert "Sd" in {o.regimen for o in decide(s4, car_t_available=False).options}


def test_sd_is_never_preferred_for_a_non_penta_tcr_patient_without_car_t():
    d = decide(state(**TCR), car_t_available=False)
    assert "Sd" not in tiers(d)["preferred"] + tiers(d)["other"]


# --- 4. fitness in every tier ---------------------------------------------------------------------------------
def test_frail_81_year_old_gets_no_carfilzomib_triplet_preferred():
    carfilzomib_triplets = {"KRd", "DKd", "IsaKd", "KPd", "SKd"}
    for kw in (LEN_REFRACTORY, dict(lines=1, exposed=("lenalidomide", "bortezomib")),
               dict(lines=2, refractory=("lenalidomide",), exposed=("bortezomib",))):
        d = decide(state(**kw, age=81, frail=True))
        assert not carfilzomib_triplets & set(tiers(d)["preferred"]), (kw, tiers(d)["preferred"])
        assert any("frail or over 75" in n for o in d.options if o.regimen in carfilzomib_triplets for n in o.notes)


def test_ecog_3_car_t_and_bispecifics_are_not_preferred():
    d = decide(state(**TCR, ecog=3))
    assert d.options[0].regimen not in ("cilta-cel", "ide-cel")
    for o in d.options:
        if o.regimen in ("cilta-cel", "ide-cel", "teclistamab", "elranatamab", "talquetamab", "linvoseltamab"):
            assert o.tier == "other" and any("ECOG 3" in n for n in o.notes)


def test_ecog_3_no_salvage_asct():
    from cds_service.clinical.model import TransplantState
    t = TransplantState(prior_asct=True, months_asct_to_progression=48, maintenance_after_asct=True,
                        salvage_asct="candidate")
    d = decide(state(lines=1, exposed=("lenalidomide", "bortezomib"), transplant=t, ecog=3))
    assert avoid(d)["salvage-ASCT"].reason == "not-fit-for-salvage-asct"


# --- 5. venetoclax with t(11;14) -----------------------------------------------------------------------------
def test_tcr_with_t11_14_gets_a_venetoclax_regimen():
    cyto = Cytogenetics(tested=True, findings=["t(11;14)"], t11_14=True, high_risk=False)
    d = decide(state(**TCR, cytogenetics=cyto))
    ven = opt(d, "Vend")
    assert ven is not None and ven.tier == "other" and ven.off_label == "US"
    assert "VenVd" not in {o.regimen for o in d.options}  # bortezomib-refractory


# --- 6. claims the field has moved past -------------------------------------------------------------------
def _all_card_text(cards):
    return "\n".join(c["summary"] + "\n" + (c.get("detail") or "") for c in cards)


def test_cards_never_quote_a_superseded_claim_without_its_source():
    s = state(**TCR)
    cards = patient_view_cards(s, K, settings())
    text = _all_card_text(cards)
    assert "being withdrawn" not in text.lower()
    if "5.6 months" in text:
        assert "MAMMOTH" in text and "8.6 months" in text
    ide = opt(decide(s), "ide-cel")
    assert any("Supersedes 000" in n and "2 prior lines" in n for n in ide.notes)
    assert "at least 4 prior therapies" not in text or "Supersedes" in text


def test_bispecifics_cite_their_pivotal_trials():
    d = decide(state(**TCR))
    assert "MajesTEC-1" in opt(d, "teclistamab").sources[0]["citation"]
    assert "MonumenTAL-1" in opt(d, "talquetamab").sources[0]["citation"]
    assert not any("TRIMM-2" in s["citation"] for s in opt(d, "talquetamab").sources[:1])


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.integers(1, 6), refr=st.sets(st.sampled_from(["lenalidomide", "bortezomib", "daratumumab",
                                                                  "pomalidomide", "carfilzomib"])),
       region=st.sampled_from(["US", "EU"]))
def test_no_card_cites_a_search_or_a_machine_written_summary(lines, refr, region):
    s = state(lines=lines, refractory=tuple(sorted(refr)))
    for c in patient_view_cards(s, K, settings(label_region=region)):
        ext = c["extension"]["org.mmcds.card"]
        srcs = list(ext["sources"]) + [src for o in ext.get("options", []) for src in o["sources"]]
        for src in srcs:
            assert src["url"] is None or "?term=" not in src["url"], src
            assert src["seed"] not in ("000_af8a7d915d6764c5.txt", "002_49145e8a5446c5dd.txt") or \
                "Dr.Oracle" not in src["citation"]
            assert "machine-written" not in src["citation"].lower()


# --- labels: US and EU differ exactly where the labels differ ---------------------------------------
def _terms(lab):
    """What decides eligibility: status and conditions (not the wording or the source)."""
    return (lab.status, lab.min_prior_lines, set(lab.exposed_to), set(lab.refractory_to), lab.penta_refractory)


REGIONAL = {code for code, r in K.catalog.regimens.items() if r.labels and _terms(r.labels["US"]) != _terms(r.labels["EU"])}


def test_the_regions_differ_in_the_expected_labels():
    # BPd (EU only), BVd's line count, Tec-Dara's status; bispecific monotherapy: >= 4 (US) vs >= 3 (EU);
    # PanoVd: panobinostat withdrawn in the US (2021), EU authorisation kept
    assert {"BPd", "BVd", "Tec-Dara", "teclistamab", "elranatamab", "talquetamab", "linvoseltamab", "PanoVd"} == REGIONAL


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.integers(1, 6),
       refr=st.sets(st.sampled_from(["lenalidomide", "bortezomib", "daratumumab", "pomalidomide", "carfilzomib"])),
       expo=st.sets(st.sampled_from(["lenalidomide", "bortezomib", "daratumumab", "pomalidomide"])))
def test_us_and_eu_agree_on_every_regimen_whose_labels_agree(lines, refr, expo):
    s = state(lines=lines, refractory=tuple(sorted(refr)), exposed=tuple(sorted(expo - refr)))
    us, eu = decide(s, label_region="US"), decide(s, label_region="EU")
    def view(d):
        return {o.regimen: (o.tier, bool(o.off_label)) for o in d.options if o.regimen not in REGIONAL}
    # a regional regimen can shift the others' ranks, never their tier or label status
    assert view(us) == view(eu)


def test_label_region_is_validated_at_start():
    assert load_settings({}, environ={}).label_region == "US"
    assert load_settings({}, environ={"MMCDS_LABEL_REGION": "eu"}).label_region == "EU"
    try:
        load_settings({"LABEL_REGION": "UK"}, environ={})
    except ConfigError as exc:
        assert "LABEL_REGION" in str(exc)
    else:
        raise AssertionError("a bad LABEL_REGION must fail at start")


# --- 7. order checks ------------------------------------------------------------------------------------------
def codes(cards):
    return [c["extension"]["org.mmcds.card"]["code"] for c in cards]


def test_bispecific_without_infection_prophylaxis():
    s = state(**TCR)
    cards = order_cards(s, [draft("MedicationRequest/t", ["teclistamab"])], K, settings(), "order-select", record=record())
    c = next(c for c in cards if c["extension"]["org.mmcds.card"]["code"] == "tcr-infection-prophylaxis")
    assert "antiviral" in c["summary"] and "Pneumocystis" in c["summary"] and "IgG" in c["detail"]
    assert len(c["suggestions"]) == 3
    covered = record(supportive("zoster-prophylaxis"), supportive("pjp-prophylaxis"))
    assert "tcr-infection-prophylaxis" not in codes(order_cards(s, [draft("MedicationRequest/t", ["teclistamab"])],
                                                                K, settings(), "order-select", record=covered))


def test_venetoclax_without_tls_precautions():
    cyto = Cytogenetics(tested=True, findings=["t(11;14)"], t11_14=True, high_risk=False)
    s = state(**TCR, cytogenetics=cyto)
    drafts = [draft("MedicationRequest/v", ["venetoclax"]), draft("MedicationRequest/d", ["dexamethasone"])]
    assert "venetoclax-tls-precautions" in codes(order_cards(s, drafts, K, settings(), "order-sign", record=record()))
    with_allopurinol = drafts + [draft("MedicationRequest/a", [], category="tls-prophylaxis", display="allopurinol")]
    assert "venetoclax-tls-precautions" not in codes(order_cards(s, with_allopurinol, K, settings(), "order-sign",
                                                                 record=record()))


def test_bendamustine_before_planned_t_cell_redirection():
    s = state(**TCR)
    cards = order_cards(s, [draft("MedicationRequest/b", ["bendamustine"]), draft("MedicationRequest/d", ["dexamethasone"])],
                        K, settings(), "order-select", record=record())
    c = next(c for c in cards if c["extension"]["org.mmcds.card"]["code"] == "alkylator-before-tcr")
    assert "cilta-cel" in c["detail"] and c["indicator"] == "warning"


# --- properties over generated states ---------------------------------------------------------------------------
TCR_AGENTS = {"idecabtagene-vicleucel": ("CAR-T", "BCMA"), "ciltacabtagene-autoleucel": ("CAR-T", "BCMA"),
              "teclistamab": ("bispecific", "BCMA"), "elranatamab": ("bispecific", "BCMA"),
              "talquetamab": ("bispecific", "GPRC5D"), "belantamab-mafodotin": ("ADC", "BCMA")}


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.integers(1, 7),
       refr=st.sets(st.sampled_from(["lenalidomide", "bortezomib", "daratumumab", "pomalidomide", "carfilzomib"])),
       history=st.lists(st.tuples(st.sampled_from(sorted(TCR_AGENTS)), st.booleans()), max_size=3),
       frail=st.booleans(), ecog_value=st.sampled_from([None, 0, 1, 2, 3, 4]),
       region=st.sampled_from(["US", "EU"]), car_t=st.booleans())
def test_property_failed_targets_fitness_and_labels(lines, refr, history, frail, ecog_value, region, car_t):
    s = state(lines=lines, refractory=tuple(sorted(refr)), frail=frail, ecog=ecog_value)
    s.tcr_history = [tcr(a, TCR_AGENTS[a][0], TCR_AGENTS[a][1], lines, "refractory" if failed else "exposed")
                     for a, failed in history]
    failed = {TCR_AGENTS[a][1] for a, f in history if f}
    s.targets = {t: ("refractory" if t in failed else ("exposed" if any(TCR_AGENTS[a][1] == t for a, _ in history)
                                                      else "naive")) for t in ("BCMA", "GPRC5D")}
    d = decide(s, label_region=region, car_t_available=car_t)
    cat = K.catalog
    for o in d.options:
        r = cat.regimens[o.regimen]
        assert not set(cat.targets(o.regimen)) & failed, (o.regimen, failed)  # never the failed target again
        if o.tier == "preferred":
            assert not o.off_label  # off-label only under `other`
            assert not (r.intensive and frail)  # frail: no carfilzomib triplet / intensive therapy preferred
            assert not (ecog_value is not None and ecog_value >= 3 and cat.is_t_cell_redirecting(o.regimen))
        lab = r.labels.get(region)
        assert lab is None or lab.status not in ("not-approved", "withdrawn", "pending"), o.regimen
        if o.regimen == "Sd":  # only within its label, below every T-cell redirecting option
            assert s.penta_refractory and lines >= 4
    ranks = {o.regimen: (o.tier, o.rank) for o in d.options}
    if "Sd" in ranks:
        for reg, (tier, rank) in ranks.items():
            if tier == ranks["Sd"][0] and cat.is_t_cell_redirecting(reg):
                assert rank < ranks["Sd"][1]


def test_salvage_asct_notice_says_fitness_when_fitness_overrules_the_months():
    from cds_service.clinical.model import TransplantState
    from cds_service.clinical.notices import decide_notices
    t = TransplantState(prior_asct=True, months_asct_to_progression=48, maintenance_after_asct=True,
                        salvage_asct="candidate")
    notes = {n.code: n for n in decide_notices(state(lines=1, exposed=("lenalidomide", "bortezomib"), transplant=t,
                                                     ecog=3), K)}
    n = notes["salvage-asct-not-recommended"]
    assert "ECOG" in n.params["why"] and "< 18" not in n.params["why"]


def test_frail_intensive_regimens_come_last_in_their_tier():
    d = decide(state(**LEN_REFRACTORY, age=81, frail=True))
    other = tiers(d)["other"]
    intensive = [r for r in other if K.catalog.regimens[r].intensive]
    assert intensive and other[-len(intensive):] == intensive
