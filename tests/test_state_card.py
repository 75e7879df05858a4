"""The patient-view `state` card: summary, markdown detail, CONTRACT `state` object."""

from __future__ import annotations

import pytest

from cds_service.clinical.state import derive_state
from cds_service.knowledge.loader import Knowledge
from cds_service.render.cards import EXTENSION_KEY
from cds_service.render.state_card import state_card
from tests.clinical_builders import AS_OF, asct, ecog, fish, flatten, med, prog, record, regimen

KNOWLEDGE = Knowledge(version="test-1", mappings={}, cards={}, digest="x")

CONTRACT_KEYS = {
    "multipleMyeloma",
    "priorLines",
    "agents",
    "classes",
    "doubleRefractory",
    "tripleClassExposed",
    "tripleClassRefractory",
    "pentaRefractory",
    "progressedOnLenalidomideMaintenance",
    "cytogenetics",
    "transplant",
    "frail",
    "plasmaCellLeukemia",
    "extramedullary",
    "targets",
    "onTherapy",
}


def _tcr_record():
    meds = flatten(
        regimen(["bortezomib", "lenalidomide", "dexamethasone"], "2018-01-01", "2018-05-01"),
        med("lenalidomide", "2018-09-01", "2020-01-01", stop="progression"),
        regimen(["daratumumab", "pomalidomide", "dexamethasone"], "2020-01-10", "2022-01-01"),
        regimen(["carfilzomib", "dexamethasone"], "2022-01-10", "2023-01-01"),
    )
    progs = [prog("2019-12-20"), prog("2021-12-20"), prog("2022-12-20")]
    return record(
        meds,
        progressions=progs,
        transplants=[asct("2018-07-01")],
        cyto=[fish("del(17p)", True), fish("t(11;14)", False)],
        ecogs=[ecog("2022-12-01", 1)],
    )


def _validate_contract(s: dict) -> None:
    assert set(s) == CONTRACT_KEYS
    assert s["multipleMyeloma"] is True and isinstance(s["priorLines"], int)
    assert all(v in ("exposed", "refractory") for v in s["agents"].values())
    assert "dexamethasone" not in s["agents"]
    assert set(s["classes"]) == {"IMiD", "PI", "anti-CD38"}
    assert all(v in ("naive", "exposed", "refractory") for v in s["classes"].values())
    for k in (
        "doubleRefractory",
        "tripleClassExposed",
        "tripleClassRefractory",
        "pentaRefractory",
        "plasmaCellLeukemia",
        "extramedullary",
    ):
        assert isinstance(s[k], bool)
    assert s["progressedOnLenalidomideMaintenance"] in (True, False, None)
    assert s["frail"] in (True, False, None)
    assert set(s["cytogenetics"]) == {"tested", "highRisk", "findings", "t11_14", "riskDefinition"}
    assert set(s["targets"]) == {"BCMA", "GPRC5D"} and isinstance(s["onTherapy"], bool)
    assert set(s["transplant"]) == {"priorASCT", "monthsAsctToProgression", "salvageASCT"}
    assert s["transplant"]["salvageASCT"] in ("candidate", "discuss", "not-recommended", None)


def test_tcr_card_summary_detail_and_contract():
    st = derive_state(_tcr_record(), AS_OF)
    card = state_card(st, KNOWLEDGE)
    assert len(card["summary"]) < 140
    assert card["summary"].startswith("Relapsed myeloma after 3 lines")
    assert "triple-class refractory (lenalidomide, pomalidomide, carfilzomib, daratumumab)" in card["summary"]
    assert "del(17p)" in card["summary"]
    ext = card["extension"][EXTENSION_KEY]
    assert ext["kind"] == "state" and ext["ruleId"] == "state.treatment-history"
    assert ext["knowledgeVersion"] == "test-1"
    s = ext["state"]
    _validate_contract(s)
    assert s["priorLines"] == 3
    assert s["agents"] == {
        "bortezomib": "exposed",
        "carfilzomib": "refractory",
        "daratumumab": "refractory",
        "lenalidomide": "refractory",
        "pomalidomide": "refractory",
    }
    assert s["progressedOnLenalidomideMaintenance"] is True
    assert s["cytogenetics"] == {"tested": True, "highRisk": True, "findings": ["del(17p)"], "t11_14": False,
                                 "riskDefinition": "IMS-IMWG-2025"}
    assert s["transplant"]["monthsAsctToProgression"] == 17
    assert s["transplant"]["salvageASCT"] == "not-recommended"
    detail = card["detail"]
    assert "| 1 | 2018-01-01 |" in detail and "| 3 | 2022-01-10 |" in detail
    assert "progression on 2019-12-20" in detail
    assert "lenalidomide maintenance" in detail
    assert "documented negative: t(11;14)" in detail
    # clinician text: no internal source ids, chart references only in the evidence view
    assert "seed" not in detail.lower() and "MedicationStatement/" not in detail
    # sources open a work or carry no link (never a search); seeds stay machine-readable in the
    # extension: the IMWG 2021 recommendations, never the machine-written summary (seed 002)
    urls = [x["url"] for x in ext["sources"] if x["url"]]
    assert urls and all(u.startswith("https://doi.org/") for u in urls)
    assert card["source"]["url"].startswith("https://doi.org/")
    assert "003_b26e4a5f368c32be.txt" in {x["seed"] for x in ext["sources"]}
    assert "002_49145e8a5446c5dd.txt" not in {x["seed"] for x in ext["sources"]}
    assert card["indicator"] == "warning"


def test_not_relapsed_card_and_unknowns_are_null():
    st = derive_state(
        record(regimen(["daratumumab", "lenalidomide", "dexamethasone"], "2024-01-01", ongoing=True), birth=None), AS_OF
    )
    card = state_card(st, KNOWLEDGE)
    s = card["extension"][EXTENSION_KEY]["state"]
    _validate_contract(s)
    assert s["frail"] is None
    assert s["cytogenetics"] == {"tested": False, "highRisk": None, "findings": [], "t11_14": None,
                                 "riskDefinition": "IMS-IMWG-2025"}
    assert s["transplant"] == {"priorASCT": False, "monthsAsctToProgression": None, "salvageASCT": None}
    assert "not relapsed" in card["summary"]
    assert "not tested" in card["detail"]
    assert "Missing or uncertain data" in card["detail"]


def test_insufficient_and_non_myeloma_cards():
    st = derive_state(record([]), AS_OF)
    card = state_card(st, KNOWLEDGE)
    assert "insufficient" in card["summary"]
    assert card["extension"][EXTENSION_KEY]["state"]["priorLines"] == 0
    st = derive_state(record([], myeloma=False), AS_OF)
    card = state_card(st, KNOWLEDGE)
    assert card["extension"][EXTENSION_KEY]["state"]["multipleMyeloma"] is False


@pytest.mark.parametrize("n", [1, 4, 8])
def test_summary_stays_short_with_many_lines_and_findings(n):
    meds = []
    progs = []
    agents = [
        "lenalidomide",
        "bortezomib",
        "daratumumab",
        "pomalidomide",
        "carfilzomib",
        "isatuximab",
        "selinexor",
        "elotuzumab",
    ]
    for i in range(n):
        y = 2010 + 2 * i
        meds.append(med(agents[i % len(agents)], f"{y}-01-01", f"{y + 1}-06-01"))
        progs.append(prog(f"{y + 1}-05-20"))
    cyto = [fish(a, True) for a in ("del(17p)", "t(4;14)", "1q-gain", "del(1p)", "t(14;16)")]
    st = derive_state(record(meds, progressions=progs, cyto=cyto, ecogs=[ecog("2020-01-01", 3)]), AS_OF)
    card = state_card(st, KNOWLEDGE)
    assert len(card["summary"]) < 140
    assert st.prior_lines == n


def test_len_recent_exposure_is_said_in_summary_and_detail():
    meds = flatten(regimen(["lenalidomide", "dexamethasone"], "2020-01-01", "2021-01-01", stop="toxicity"))
    st = derive_state(record(meds, progressions=[prog("2021-05-01")]), AS_OF)
    card = state_card(st, KNOWLEDGE)
    assert "len stopped < 6 months before progression" in card["summary"]
    assert "IMWG 2021" in card["detail"] and "60 days – 6 months" in card["detail"]
    assert card["extension"][EXTENSION_KEY]["state"]["agents"] == {"lenalidomide": "exposed"}


@pytest.mark.parametrize("n", [2, 6])
def test_on_therapy_summary_names_current_line_and_stays_short(n):
    """Many refractory agents, BCMA refractory, high-risk FISH, uncertain count: still one short line."""
    agents = ["lenalidomide", "bortezomib", "daratumumab", "pomalidomide", "carfilzomib", "isatuximab"]
    meds, progs = [], []
    for i in range(n):
        y = 2012 + 2 * i
        meds.append(med(agents[i % len(agents)], f"{y}-01-01", f"{y + 1}-06-01"))
        progs.append(prog(f"{y + 1}-05-20"))
    meds.append(med("ciltacabtagene-autoleucel", "2025-01-10", kind="administration"))
    progs.append(prog("2026-05-01"))
    meds += regimen(["talquetamab", "dexamethasone"], "2026-05-20", ongoing=True)
    extra = med("selinexor", None)
    extra.asserted = AS_OF.replace(year=2005)  # before any line: listed as undated
    meds.append(extra)
    cyto = [fish(a, True) for a in ("del(17p)", "t(4;14)", "1q-gain")]
    st = derive_state(record(meds, progressions=progs, cyto=cyto, ecogs=[ecog("2026-01-01", 2)]), AS_OF)
    card = state_card(st, KNOWLEDGE)
    assert st.on_therapy and st.current_line == st.prior_lines
    assert st.targets == {"BCMA": "refractory", "GPRC5D": "exposed"} and st.line_count_uncertain
    assert f"on line {st.prior_lines} since 2026-05-20" in card["summary"] and len(card["summary"]) < 140
    assert "On therapy: line" in card["detail"] and "Line count uncertain" in card["detail"]
    assert "CAR-T ciltacabtagene-autoleucel (BCMA), infused 2025-01-10" in card["detail"]
    assert card["extension"][EXTENSION_KEY]["state"]["onTherapy"] is True


def test_remission_after_car_t_is_said():
    meds = flatten(regimen(["daratumumab", "lenalidomide"], "2020-01-01", "2023-01-01", stop="progression"),
                   med("idecabtagene-vicleucel", "2023-03-01", kind="administration"))
    st = derive_state(record(meds, progressions=[prog("2023-01-01")]), AS_OF)
    card = state_card(st, KNOWLEDGE)
    assert st.off_therapy_no_progression and not st.on_therapy
    assert st.targets["BCMA"] == "exposed" and st.agent_status("idecabtagene-vicleucel") == "exposed"
    assert "no progression since CAR-T (2023-03-01)" in card["summary"]
    assert "Off therapy, no progression since line 2" in card["detail"]


def test_state_card_writes_drug_names_not_agent_ids():
    """A clinician reads "idecabtagene vicleucel"; the contract's state extension keeps the id."""
    from rules_builders import knowledge, state

    s = state(lines=3, refractory=("lenalidomide", "idecabtagene-vicleucel"))
    card = state_card(s, knowledge())
    assert "idecabtagene vicleucel" in card["summary"] and "idecabtagene-vicleucel" not in card["summary"]
    assert "idecabtagene-vicleucel" not in card["detail"]
    assert "idecabtagene-vicleucel" in card["extension"][EXTENSION_KEY]["state"]["agents"]
