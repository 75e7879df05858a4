"""End to end through the pipeline: FHIR resources in a CDS Hooks request → cards.

The situations of tests/test_rules_tcr.py, from charts as EHRs send them: MedicationStatements and
per-cycle MedicationRequests named by brand, disease-status Observations, ECOG, a FISH report, and
draft MedicationRequests for the order hooks. Codes are the ones tests/test_clinical_e2e.py uses
(with their sources there); drugs are text only, so no drug code is assumed.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from cds_service.config import load_settings
from cds_service.knowledge.loader import load_knowledge
from cds_service.pipeline import run
from tests.test_clinical_e2e import ecog, fish_report, myeloma, patient, request_cycles, statement, worsened

KNOWLEDGE = load_knowledge()
_ids = itertools.count(1)
EXT = "org.mmcds.card"


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def request(resources: list[dict[str, Any]], hook: str = "patient-view",
            drafts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(r)
    pat = by_type.get("Patient", [patient()])[0]
    context: dict[str, Any] = {"userId": "Practitioner/h1", "patientId": pat["id"]}
    if drafts is not None:
        context["draftOrders"] = bundle(drafts)
    return {
        "hookInstance": f"00000000-0000-4000-8000-{next(_ids):012d}", "hook": hook,
        "fhirServer": "http://localhost/fhir", "context": context,
        "prefetch": {
            "patient": pat,
            "conditions": bundle(by_type.get("Condition", [])),
            "observations": bundle(by_type.get("Observation", [])),
            "diagnosticReports": bundle(by_type.get("DiagnosticReport", [])),
            "procedures": bundle(by_type.get("Procedure", [])),
            "medicationStatements": bundle(by_type.get("MedicationStatement", [])),
            "medicationRequests": bundle(by_type.get("MedicationRequest", [])),
            "medicationAdministrations": bundle(by_type.get("MedicationAdministration", [])),
        },
    }


def cards_for(resources, hook="patient-view", drafts=None, **config) -> list[dict[str, Any]]:
    service = {"patient-view": "mm-next-line", "order-sign": "mm-order-sign"}[hook]
    settings = load_settings({"AUTH_MODE": "none", "AS_OF_DATE": "2026-11-01", **config}, environ={})
    return run(service, request(resources, hook, drafts), settings, KNOWLEDGE).response["cards"]


def options_ext(cards) -> dict[str, Any]:
    return next(c["extension"][EXT] for c in cards if c["extension"][EXT]["kind"] == "options")


def preferred(ext) -> list[str]:
    return [o["regimen"] for o in ext["options"] if o["tier"] == "preferred"]


def offered(ext) -> dict[str, dict[str, Any]]:
    return {o["regimen"]: o for o in ext["options"]}


def avoided(ext) -> dict[str, str]:
    return {a["regimen"]: a["reason"] for a in ext["avoid"]}


def draft(text: str) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": f"draft{next(_ids)}", "status": "draft", "intent": "order",
            "medicationCodeableConcept": {"text": text}, "subject": {"reference": "Patient/p1"},
            "authoredOn": "2026-11-01"}


def finding_codes(cards) -> list[str]:
    return [c["extension"][EXT]["code"] for c in cards if c["extension"][EXT]["kind"] == "finding"]


# --- charts -------------------------------------------------------------------------------------------------
def dvrd_then_dr_maintenance(birth: str = "1961-04-02") -> list[dict[str, Any]]:
    """D-VRd induction, then daratumumab-lenalidomide maintenance, progression on maintenance."""
    res = [patient(birth), myeloma(onset="2022-01-10"), ecog("2026-09-20", 1)]
    res += request_cycles("Darzalex Faspro 1800 mg SC", "2022-02-01", 6, length=1)
    res += request_cycles("Velcade 1.3 mg/m2 SC", "2022-02-01", 6, length=11)
    res += request_cycles("Revlimid 25 mg capsule", "2022-02-01", 6)
    res.append(statement("Revlimid 10 mg capsule", "2022-08-01", status="active"))
    res.append(statement("Darzalex Faspro 1800 mg SC monthly", "2022-08-01", status="active"))
    res.append(worsened("2026-09-15"))
    return res


def vrd_then_r_maintenance(birth: str = "1961-04-02", ecog_value: int = 1) -> list[dict[str, Any]]:
    res = [patient(birth), myeloma(onset="2021-01-10"), ecog("2026-09-20", ecog_value)]
    res += request_cycles("Velcade 1.3 mg/m2 SC", "2021-02-01", 6, every=21, length=11)
    res += request_cycles("Revlimid 25 mg capsule", "2021-02-01", 6, every=21, length=14)
    res.append(statement("Revlimid 10 mg capsule", "2021-07-01", status="active"))
    res.append(worsened("2026-09-15"))
    return res


def triple_class_refractory(extra: list[dict[str, Any]] | None = None, birth: str = "1956-06-01",
                            ecog_value: int = 1) -> list[dict[str, Any]]:
    """VRd → R maintenance (progression), DKd (progression), PVd (progression): 3 lines, TCR."""
    res = [patient(birth), myeloma(onset="2019-01-10"), ecog("2026-09-20", ecog_value)]
    res.append(statement("Velcade 1.3 mg/m2", "2019-02-01", "2019-07-01"))
    res.append(statement("Revlimid 25 mg then 10 mg maintenance", "2019-02-01", "2021-05-01"))
    res.append(worsened("2021-04-20"))
    res.append(statement("Darzalex 16 mg/kg IV", "2021-05-10", "2023-03-01"))
    res.append(statement("Kyprolis 56 mg/m2 IV", "2021-05-10", "2023-03-01"))
    res.append(worsened("2023-02-20"))
    res.append(statement("Pomalyst 4 mg capsule", "2023-03-10", "2024-06-01"))
    res.append(statement("bortezomib 1.3 mg/m2 SC", "2023-03-10", "2024-06-01"))
    res.append(worsened("2024-05-25"))
    return res + (extra or [])


def after_elranatamab() -> list[dict[str, Any]]:
    """Four lines, the fourth elranatamab (Elrexfio) with progression on it."""
    res = triple_class_refractory()
    res.append(statement("Elrexfio (elranatamab) 76 mg SC weekly", "2024-06-20", "2026-08-30"))
    res.append(worsened("2026-08-25"))
    return res


# --- 1 ---------------------------------------------------------------------------------------------------------
def test_e2e_first_relapse_on_lenalidomide_maintenance_gets_cilta_cel_and_tec_dara():
    ext = options_ext(cards_for(vrd_then_r_maintenance()))
    assert ext["setting"] == "first-relapse-len-refractory"
    assert preferred(ext)[:2] == ["cilta-cel", "Tec-Dara"]
    assert offered(ext)["BVd"]["offLabel"] == "US" and "BPd" not in offered(ext)


def test_e2e_first_relapse_in_the_eu_gets_belantamab_combinations_not_tec_dara():
    ext = options_ext(cards_for(vrd_then_r_maintenance(), LABEL_REGION="EU"))
    assert {"BVd", "BPd"} <= set(preferred(ext)) and "Tec-Dara" not in offered(ext)


def test_e2e_after_dvrd_and_dr_maintenance():
    for region in ("US", "EU"):
        ext = options_ext(cards_for(dvrd_then_dr_maintenance(), LABEL_REGION=region))
        assert ext["setting"] == "first-relapse-after-anti-cd38"
        assert preferred(ext)[0] == "cilta-cel"
        assert avoided(ext)["Tec-Dara"] == "outside-MajesTEC-3-population"
        assert ("BPd" in offered(ext)) == (region == "EU")


# --- 2 ---------------------------------------------------------------------------------------------------------
def test_e2e_after_elranatamab_no_bcma_bispecific_talquetamab_first_and_teclistamab_order_is_critical():
    res = after_elranatamab()
    ext = options_ext(cards_for(res))
    assert ext["setting"] == "triple-class-refractory"
    assert ext["options"][0]["regimen"] == "talquetamab"
    assert not {"teclistamab", "elranatamab", "linvoseltamab", "cilta-cel", "ide-cel"} & set(offered(ext))
    cards = cards_for(res, "order-sign", drafts=[draft("Tecvayli (teclistamab) 1.5 mg/kg SC")])
    assert finding_codes(cards)[0] == "same-target-after-failure"
    assert cards[0]["indicator"] == "critical" and "elranatamab" in cards[0]["detail"]


def test_e2e_after_bcma_car_t_failure_no_car_t_again():
    res = triple_class_refractory([
        statement("Abecma (idecabtagene vicleucel) infusion", "2024-07-15", "2024-07-15"),
        worsened("2024-08-28"),
    ])
    ext = options_ext(cards_for(res))
    assert not {"ide-cel", "cilta-cel"} & set(offered(ext))
    assert avoided(ext).get("cilta-cel") == "BCMA-refractory"
    assert ext["options"][0]["regimen"] == "talquetamab"


# --- 3 ---------------------------------------------------------------------------------------------------------
def test_e2e_tcr_without_car_t_bispecifics_lead_and_no_sd_outside_its_label():
    ext = options_ext(cards_for(triple_class_refractory(), CAR_T_AVAILABLE="false"))
    assert ext["setting"] == "triple-class-refractory"
    assert "Sd" not in offered(ext)
    assert preferred(ext)[0] in ("teclistamab", "elranatamab", "linvoseltamab", "talquetamab", "clinical-trial")


# --- 4 ---------------------------------------------------------------------------------------------------------
def test_e2e_frail_81_year_old_no_carfilzomib_triplet_preferred():
    ext = options_ext(cards_for(vrd_then_r_maintenance(birth="1945-03-01", ecog_value=2)))
    assert not {"KRd", "DKd", "IsaKd", "KPd"} & set(preferred(ext))


def test_e2e_ecog_3_car_t_not_first():
    ext = options_ext(cards_for(triple_class_refractory(ecog_value=3)))
    assert ext["options"][0]["regimen"] not in ("cilta-cel", "ide-cel")
    assert all(o["tier"] != "preferred" for o in ext["options"] if o["regimen"] in ("cilta-cel", "ide-cel"))


# --- 5 ---------------------------------------------------------------------------------------------------------
def test_e2e_tcr_with_t11_14_gets_venetoclax():
    res = triple_class_refractory([fish_report("2019-01-20", "CCND1/IGH t(11;14) DETECTED in 62% of nuclei")])
    ext = options_ext(cards_for(res))
    assert "Vend" in offered(ext) and offered(ext)["Vend"]["offLabel"] == "US"


# --- 6 ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chart", [triple_class_refractory, vrd_then_r_maintenance, dvrd_then_dr_maintenance])
def test_e2e_cards_cite_works_not_searches_or_machine_summaries(chart):
    cards = cards_for(chart())
    text = "\n".join(c["summary"] + (c.get("detail") or "") for c in cards)
    assert "being withdrawn" not in text.lower()
    for c in cards:
        ext = c["extension"][EXT]
        for src in ext["sources"] + [s for o in ext.get("options", []) for s in o["sources"]]:
            assert src["url"] is None or "?term=" not in src["url"]
            assert "Dr.Oracle" not in src["citation"] and "machine-written" not in src["citation"].lower()


# --- 7 ---------------------------------------------------------------------------------------------------------
def test_e2e_order_checks_for_t_cell_redirection_and_venetoclax():
    res = triple_class_refractory([fish_report("2019-01-20", "CCND1/IGH t(11;14) DETECTED in 62% of nuclei")])
    assert "tcr-infection-prophylaxis" in finding_codes(
        cards_for(res, "order-sign", drafts=[draft("Talvey (talquetamab) 0.4 mg/kg SC")]))
    assert "venetoclax-tls-precautions" in finding_codes(
        cards_for(res, "order-sign", drafts=[draft("Venclexta (venetoclax) 800 mg tablet"),
                                             draft("dexamethasone 40 mg tablet")]))
    assert "venetoclax-tls-precautions" not in finding_codes(
        cards_for(res, "order-sign", drafts=[draft("Venclexta (venetoclax) 800 mg tablet"),
                                             draft("allopurinol 300 mg tablet")]))
    assert "alkylator-before-tcr" in finding_codes(
        cards_for(res, "order-sign", drafts=[draft("bendamustine 90 mg/m2 IV"), draft("dexamethasone 40 mg tablet")]))


def test_e2e_after_teclistamab_an_elranatamab_order_raises_same_target():
    res = triple_class_refractory()
    res.append(statement("Tecvayli (teclistamab) 1.5 mg/kg SC weekly", "2024-06-20", "2026-08-30"))
    res.append(worsened("2026-08-25"))
    cards = cards_for(res, "order-sign", drafts=[draft("Elrexfio (elranatamab) 76 mg SC")])
    assert "same-target-after-failure" in finding_codes(cards)
    assert "refractory-agent-ordered" not in finding_codes(cards)  # elranatamab itself was never given


def test_e2e_bispecifics_cite_their_pivotal_trials():
    ext = options_ext(cards_for(triple_class_refractory()))
    assert "MajesTEC-1" in offered(ext)["teclistamab"]["sources"][0]["citation"]
    assert "MonumenTAL-1" in offered(ext)["talquetamab"]["sources"][0]["citation"]
    assert "MagnetisMM-3" in offered(ext)["elranatamab"]["sources"][0]["citation"]
