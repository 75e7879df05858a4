"""T-cell redirecting therapy: target states, CAR-T failure at any later progression, bridging in the
CAR-T line, remission after CAR-T — each built in several real-world FHIR encodings and run through
the service (state card extension and summary), CLINICAL_LOGIC §5."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from tests.redteam import builders as b

SNOMED = "http://snomed.info/sct"


def add_days(day: str, n: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=n)).isoformat()


ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"


def cards_for(client, p: b.Patient) -> list[dict[str, Any]]:
    resp = client.post("/cds-services/mm-next-line", json=p.cds_request())
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return resp.get_json()["cards"]


def ext(cards: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [c for c in cards if c["extension"]["org.mmcds.card"]["kind"] == kind]


def state_of(cards: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    (card,) = ext(cards, "state")
    assert len(card["summary"]) < 140, card["summary"]
    return card, card["extension"]["org.mmcds.card"]["state"]


# ----------------------------------------------------------------------- CAR-T encodings

def cilta_admin(p: b.Patient, day: str) -> None:
    p.administration(b.text_cc("CARVYKTI (ciltacabtagene autoleucel) suspension for IV infusion"), when=day)


def cilta_statement_brand(p: b.Patient, day: str) -> None:
    p.statement(b.text_cc("Carvykti"), None, status="completed", effectiveDateTime=day)


def cilta_procedure_pcs(p: b.Patient, day: str) -> None:
    # ICD-10-PCS XW033A7, First Coast CAR T-cell billing table (mappings/procedures.yaml)
    p.procedure("XW033A7", ICD10PCS, day, "Introduction of ciltacabtagene autoleucel into peripheral vein")


def cilta_procedure_snomed_plus_request(p: b.Patient, day: str) -> None:
    # SNOMED 1156961008 (no product) + the product order: the product comes from the medication record
    p.procedure("1156961008", SNOMED, day, "Chimeric antigen receptor T-cell immunotherapy (procedure)",
                text="CAR-T cell infusion")
    p.request(b.text_cc("ciltacabtagene autoleucel"), "2023-04-20", status="completed")


CAR_T_ENCODINGS: dict[str, Callable[[b.Patient, str], None]] = {
    "administration-brand": cilta_admin,
    "statement-brand": cilta_statement_brand,
    "procedure-icd10pcs": cilta_procedure_pcs,
    "procedure-snomed+request": cilta_procedure_snomed_plus_request,
}


def bridging_statements(p: b.Patient) -> None:
    for agent in ("pomalidomide", "bortezomib", "dexamethasone"):
        p.statement(b.rx(agent), "2023-03-20", "2023-04-25")


def bridging_requests(p: b.Patient) -> None:
    for start in ("2023-03-20", "2023-04-10"):
        p.request(b.rx("pomalidomide"), start, status="completed", bounds=(start, add_days(start, 13)))
        for day in (0, 3, 7, 10):
            p.administration(b.rx("bortezomib"), when=add_days(start, day))
        p.request(b.rx("dexamethasone"), start, status="completed")


def _drd_then_cilta(pid: str, car_t: Callable[[b.Patient, str], None],
                    bridging: Callable[[b.Patient], None]) -> b.Patient:
    """DRd first line to progression, PVd bridging, cilta-cel 2023-05-10, progression 2025-01-15 (20 months)."""
    p = b.Patient(pid, birth="1961-04-04")
    p.myeloma(onset="2019-12-01")
    for agent in ("daratumumab", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(agent), "2020-01-10", "2023-03-01", status="stopped", reason_text="Disease progression")
    p.disease_status("2023-03-01")
    bridging(p)
    p.administration(b.rx("cyclophosphamide"), when="2023-05-05")  # lymphodepletion
    car_t(p, "2023-05-10")
    p.disease_status("2025-01-15")
    p.ecog("2025-01-15", 1)
    return p


@pytest.mark.parametrize("bridging", [bridging_statements, bridging_requests], ids=["statements", "requests"])
@pytest.mark.parametrize("encoding", list(CAR_T_ENCODINGS), ids=list(CAR_T_ENCODINGS))
def test_relapse_20_months_after_cilta_cel_is_car_t_and_bcma_failure(client, encoding: str, bridging) -> None:
    p = _drd_then_cilta(f"tcr-{encoding}-{bridging.__name__}", CAR_T_ENCODINGS[encoding], bridging)
    card, st = state_of(cards_for(client, p))
    assert st["agents"]["ciltacabtagene-autoleucel"] == "refractory", st["agents"]
    assert st["targets"] == {"BCMA": "refractory", "GPRC5D": "naive"}
    # PVd bridging belongs to the CAR-T line: DRd, then PVd + cilta-cel = 2 lines (not 3)
    assert st["priorLines"] == 2
    assert st["agents"]["pomalidomide"] == "exposed" and st["agents"]["bortezomib"] == "exposed"
    table = card["detail"].split("**Agents**")[0]
    assert "cyclophosphamide" not in table, "lymphodepletion is not a line nor a regimen drug of the line label"
    assert "| 2 | 2023-03-20 |" in table and "ciltacabtagene autoleucel" in table  # drug name, not the agent id
    assert "BCMA refractory" in card["summary"]
    cilta = next(ln for ln in card["detail"].splitlines() if ln.startswith("- **ciltacabtagene autoleucel"))
    assert "20 months after the ciltacabtagene autoleucel infusion on 2023-05-10" in cilta
    assert "any progression after it counts" in cilta and "reason not documented" not in cilta
    assert "T-cell redirecting therapy" in card["detail"] and "CAR-T ciltacabtagene autoleucel (BCMA)" in card["detail"]


def test_car_t_without_product_says_so_and_implies_bcma_only_from_words(client) -> None:
    for text, target in (("CAR-T cell infusion", None), ("BCMA CAR-T cell infusion", "refractory")):
        p = _drd_then_cilta(f"tcr-unnamed-{target}", lambda q, day, t=text: q.procedure(
            "1156961008", SNOMED, day, "Chimeric antigen receptor T-cell immunotherapy (procedure)", text=t),
            bridging_statements)
        card, st = state_of(cards_for(client, p))
        assert st["priorLines"] == 2
        assert not any("unspecified" in a for a in st["agents"]), st["agents"]  # not a CONTRACT agent
        assert st["targets"]["BCMA"] == (target or "naive")
        if target is None:
            assert "without its product or target" in card["detail"]
            assert "CAR-T, product not recorded (unknown)" in card["detail"]


def test_progression_long_after_bispecific_stop_is_exposed_not_refractory(client) -> None:
    """Bispecifics follow the 60-day rule; a CAR-T does not."""
    p = b.Patient("tcr-tal", birth="1955-02-02")
    p.myeloma(onset="2018-01-01")
    for agent in ("daratumumab", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(agent), "2018-02-01", "2022-01-10", status="stopped", reason_text="Disease progression")
    p.disease_status("2022-01-10")
    for week in range(0, 40, 2):
        p.administration(b.rx("talquetamab"), when=add_days("2022-02-01", 7 * week))
    p.disease_status("2024-06-01")  # > 60 days after the last talquetamab dose (2022-10-18)
    _card, st = state_of(cards_for(client, p))
    assert st["agents"]["talquetamab"] == "exposed"
    assert st["targets"] == {"BCMA": "naive", "GPRC5D": "exposed"}


@pytest.mark.parametrize("encoding", ["administration-brand", "procedure-icd10pcs"])
def test_stringent_cr_after_car_t_is_not_a_relapse_menu(client, encoding: str) -> None:
    """Triple-class refractory, cilta-cel 2025-06-02, no progression since: remission, no relapse menu."""
    p = b.Patient(f"tcr-scr-{encoding}", birth="1960-06-06")
    p.myeloma(onset="2019-01-01")
    for agent in ("daratumumab", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(agent), "2019-02-01", "2022-02-01", status="stopped", reason_text="Disease progression")
    p.disease_status("2022-02-01")
    for agent in ("carfilzomib", "pomalidomide", "dexamethasone"):
        p.statement(b.rx(agent), "2022-02-20", "2025-03-01", status="stopped", reason_text="Disease progression")
    p.disease_status("2025-03-01")
    CAR_T_ENCODINGS[encoding](p, "2025-06-02")
    p.observation({"text": "IMWG response"}, "2026-09-01", valueString="Stringent complete response")
    cards = cards_for(client, p)
    card, st = state_of(cards)
    assert st["tripleClassRefractory"] is True
    assert st["targets"]["BCMA"] == "exposed" and st["agents"]["ciltacabtagene-autoleucel"] == "exposed"
    assert st["onTherapy"] is False
    opts = ext(cards, "options")
    assert [o["extension"]["org.mmcds.card"]["setting"] for o in opts] == ["not-relapsed"]
    assert not opts[0]["extension"]["org.mmcds.card"]["options"]
    assert "no progression since CAR-T" in card["summary"]
    codes = {c["extension"]["org.mmcds.card"].get("code") for c in ext(cards, "notice")}
    assert not codes & {"restage-at-relapse", "clinical-trial", "salvage-asct-candidate"}, codes


def _long_bridging(pid: str, apheresis: bool) -> b.Patient:
    """DRd to progression; T cells collected 2023-01-10; KPd bridging from 2023-01-20 for a long
    manufacturing wait; cilta-cel 2023-05-10 (110 days after the bridging began)."""
    p = b.Patient(pid, birth="1961-04-04")
    p.myeloma(onset="2019-12-01")
    for agent in ("daratumumab", "lenalidomide", "dexamethasone"):
        p.statement(b.rx(agent), "2020-01-10", "2023-01-05", status="stopped", reason_text="Disease progression")
    p.disease_status("2023-01-05")
    if apheresis:
        p.add({"resourceType": "Procedure", "status": "completed", "performedDateTime": "2023-01-10",
               "code": {"text": "Leukapheresis for CAR-T cell manufacturing"}})
    for agent in ("carfilzomib", "pomalidomide", "dexamethasone"):
        p.statement(b.rx(agent), "2023-01-20", "2023-04-25")
    cilta_admin(p, "2023-05-10")
    return p


def test_therapy_after_t_cell_collection_is_bridging_even_when_the_wait_is_long(client) -> None:
    _card, st = state_of(cards_for(client, _long_bridging("tcr-aph", apheresis=True)))
    assert st["priorLines"] == 2
    # without the collection on record, 110 days before the infusion is beyond the bridging window
    _card, st = state_of(cards_for(client, _long_bridging("tcr-noaph", apheresis=False)))
    assert st["priorLines"] == 3
    assert st["targets"]["BCMA"] == "exposed"
