"""Unit tests of the vignette builder (tools/vignettes): one test per encoder output shape that no shipped
patient uses yet (CAR-T in three encodings, free light chains, FISH negatives in free text, statements
with only dateAsserted), the strict reading of patient files, and the drift check."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.vignettes.build import build_chart, build_patient, drift, render, render_all
from tools.vignettes.catalog import DataLoader
from tools.vignettes.chart import DataError

PATIENT = {"id": "vg-t01", "birthDate": "1960-01-01", "gender": "female"}
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
LOINC = "http://loinc.org"


def chart_of(*records: dict[str, Any]):
    return build_chart("t01-test", {"patient": PATIENT, "chart": list(records)})


def only(chart, key: str) -> dict[str, Any]:
    assert len(chart.res[key]) == 1, chart.res[key]
    return chart.res[key][0]


# ------------------------------------------------------------------------ T-cell redirecting therapies
def test_car_t_as_procedure_names_the_product_in_used_code() -> None:
    r = only(chart_of({"cell-therapy": {"date": "2025-03-10", "agent": "idecabtagene-vicleucel", "coding": "atc"}}),
             "procedures")
    assert r == {"resourceType": "Procedure", "id": "vg-t01-proc-1", "status": "completed",
                 "code": {"text": "CAR-T cell infusion"},
                 "usedCode": [{"coding": [{"system": ATC, "code": "L01XL07", "display": "idecabtagene vicleucel"}],
                               "text": "idecabtagene vicleucel"}],
                 "subject": {"reference": "Patient/vg-t01"}, "performedDateTime": "2025-03-10"}


def test_car_t_as_procedure_named_only_by_its_brand() -> None:
    r = only(chart_of({"cell-therapy": {"date": "2025-03-10", "agent": "ciltacabtagene-autoleucel", "coding": "text",
                                        "text": "Carvykti infusion", "product_as_code": True}}), "procedures")
    assert r["code"] == {"text": "Carvykti infusion"} and "usedCode" not in r
    with pytest.raises(DataError, match="product_as_code"):
        chart_of({"cell-therapy": {"date": "2025-03-10", "agent": "ciltacabtagene-autoleucel", "coding": "atc",
                                   "product_as_code": True, "procedure": "CAR-T infusion"}})


def test_car_t_as_a_single_medication_administration() -> None:
    r = only(chart_of({"administrations": {"agent": "ciltacabtagene-autoleucel", "coding": "atc",
                                           "dates": ["2025-03-10"], "route": "Intravenous"}}),
             "medicationAdministrations")
    assert r["medicationCodeableConcept"]["coding"] == [
        {"system": ATC, "code": "L01XL05", "display": "ciltacabtagene autoleucel"}]
    assert r["effectiveDateTime"] == "2025-03-10T09:30:00Z" and r["dosage"] == {"route": {"text": "Intravenous"}}


def test_car_t_as_a_statement_with_its_brand_name() -> None:
    r = only(chart_of({"statement": {"agent": "idecabtagene-vicleucel", "coding": "text", "text": "Abecma",
                                     "date": "2025-03-10"}}), "medicationStatements")
    assert r["medicationCodeableConcept"] == {"text": "Abecma"}
    assert r["effectiveDateTime"] == r["dateAsserted"] == "2025-03-10" and r["status"] == "active"


def test_car_t_has_no_invented_rxnorm_code() -> None:
    with pytest.raises(DataError, match="no sourced RxNorm ingredient"):
        chart_of({"statement": {"agent": "idecabtagene-vicleucel", "date": "2025-03-10"}})


# ------------------------------------------------------------------------ free light chains
@pytest.mark.parametrize("unit", ["mg/L", "mg/dL"])
def test_free_light_chains_one_observation_per_chain(unit: str) -> None:
    chart = chart_of({"free-light-chains": {"unit": unit, "series": [["2026-08-03", 412.5, 9.1],
                                                                      ["2026-09-01", 530.0, None]]}})
    obs = chart.res["observations"]
    assert [(o["code"]["coding"][0]["code"], o["effectiveDateTime"], o["valueQuantity"]["value"]) for o in obs] == [
        ("36916-5", "2026-08-03", 412.5), ("33944-0", "2026-08-03", 9.1), ("36916-5", "2026-09-01", 530.0)]
    assert all(o["code"]["coding"][0]["system"] == LOINC for o in obs)
    assert {(o["valueQuantity"]["unit"], o["valueQuantity"]["code"]) for o in obs} == {(unit, unit)}
    assert {o["category"][0]["coding"][0]["code"] for o in obs} == {"laboratory"}


def test_free_light_chains_reject_other_units() -> None:
    with pytest.raises(DataError, match="mg/L or mg/dL"):
        chart_of({"free-light-chains": {"unit": "g/L", "series": [["2026-08-03", 1.0, 1.0]]}})


# ------------------------------------------------------------------------ FISH negatives in free text
def test_fish_report_negatives_in_free_text() -> None:
    r = only(chart_of({"fish-report": {"date": "2026-01-05", "conclusion": "1q21 gain DETECTED in 30% of nuclei.",
                                       "not_detected": ["t(11;14)", "del(17p)"]}}), "diagnosticReports")
    assert r["conclusion"] == "1q21 gain DETECTED in 30% of nuclei. t(11;14) not detected. del(17p) not detected."
    only_negatives = only(chart_of({"fish-report": {"date": "2026-01-05", "not_detected": ["t(4;14)"]}}),
                          "diagnosticReports")
    assert only_negatives["conclusion"] == "t(4;14) not detected."
    assert only_negatives["code"] == {"text": "FISH, plasma cell myeloma panel (CD138-enriched bone marrow)"}


def test_fish_negative_as_local_observation_text_and_as_variant_text() -> None:
    chart = chart_of(
        {"fish-observation": {"date": "2026-01-05", "code": ["local-lab", "FISH-CCND1", "CCND1/IGH FISH"],
                              "value": "Not detected"}},
        {"fish": {"date": "2026-01-05", "iscn": "t(11;14)(q13;q32)", "text": "t(11;14)", "result": "negative",
                  "source_class": False}})
    local, variant = chart.res["observations"]
    assert local["valueString"] == "Not detected" and local["code"]["coding"][0]["code"] == "FISH-CCND1"
    assert local["method"]["coding"][0]["code"] == "426329006"
    assert variant["valueCodeableConcept"] == {"text": "negative"} and len(variant["component"]) == 1


# ------------------------------------------------------------------------ statements
def test_statement_with_only_date_asserted() -> None:
    r = only(chart_of({"statement": {"agent": "pomalidomide", "asserted": "2026-05-02", "coding": "text"}}),
             "medicationStatements")
    assert r == {"resourceType": "MedicationStatement", "id": "vg-t01-ms-1", "status": "active",
                 "medicationCodeableConcept": {"text": "Pomalyst 4 mg capsule"},
                 "subject": {"reference": "Patient/vg-t01"}, "dateAsserted": "2026-05-02"}


def test_statement_without_any_date_is_an_error() -> None:
    with pytest.raises(DataError, match="needs start, date or asserted"):
        chart_of({"statement": {"agent": "pomalidomide"}})


def test_referenced_medication_is_included_once_per_bundle() -> None:
    chart = chart_of({"statement": {"drugs": ["bortezomib", "bortezomib"], "start": "2024-01-01",
                                    "medication": "reference"}})
    assert [m["id"] for m in chart.includes["medicationStatements"]] == ["vg-t01-med-bortezomib-rx-in"]
    assert {r["medicationReference"]["reference"] for r in chart.res["medicationStatements"]} == {
        "Medication/vg-t01-med-bortezomib-rx-in"}
    with pytest.raises(DataError, match="two different Medications"):
        chart_of({"statement": {"drugs": ["bortezomib", {"agent": "carfilzomib"}], "start": "2024-01-01",
                                "medication": "reference", "medication_id": "m1"}})


# ------------------------------------------------------------------------ strict data
@pytest.mark.parametrize(("record", "message"), [
    ({"statment": {"agent": "bortezomib", "start": "2024-01-01"}}, "unknown kind 'statment'"),
    ({"statement": {"agent": "bortezomib", "start": "2024-01-01", "stop": "2024-02-01"}}, "unknown keys"),
    ({"statement": {"agent": "bortezomab", "start": "2024-01-01"}}, "unknown drug 'bortezomab'"),
    ({"supportive": {"agent": "aspirin", "coding": "atc", "start": "2024-01-01"}}, "one fixed coding"),
    ({"ecog": {"date": "2024-01-01"}}, "missing key 'score'"),
    ({"transplant": {"date": "2024-01-01", "code": "99999"}}, "99999"),
    ({"cell-therapy": {"date": "2025-03-10", "drugs": ["idecabtagene-vicleucel", "ciltacabtagene-autoleucel"],
                       "coding": "atc"}}, "one only"),
])
def test_patient_file_mistakes_are_named(record: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError, match=message):
        chart_of(record)


def test_draft_kinds_and_selections() -> None:
    data = {"patient": PATIENT, "orders": [{"name": "o1", "hook": "order-select", "drafts": [
        {"id": "d1", "agent": "teclistamab", "coding": "rx-product", "medication": "reference", "medication_id": "m-tec"},
        {"kind": "service", "id": "s1", "category": "Laboratory", "service": "FISH del(17p)", "reason": "relapse"}]}]}
    req = build_patient("t01-test", data)["t01-test.o1.order-select.json"]
    entries = [e["resource"] for e in req["context"]["draftOrders"]["entry"]]
    assert [(r["resourceType"], r["id"]) for r in entries] == [("Medication", "m-tec"), ("MedicationRequest", "d1"),
                                                               ("ServiceRequest", "s1")]
    assert entries[0]["code"]["coding"] == [{"system": RXNORM, "code": "2619432"}]  # the source gives no display
    assert req["context"]["selections"] == ["MedicationRequest/d1", "ServiceRequest/s1"]


def test_new_encodings_are_valid_r4() -> None:
    """Every shape added for future patients is valid FHIR R4 (R4B models), like the shipped fixtures."""
    from fhir.resources.R4B.bundle import Bundle

    data = {"patient": PATIENT, "chart": [
        {"cell-therapy": {"date": "2025-03-10", "agent": "idecabtagene-vicleucel", "coding": "atc"}},
        {"cell-therapy": {"date": "2025-03-10", "agent": "ciltacabtagene-autoleucel", "coding": "text",
                          "text": "Carvykti infusion", "product_as_code": True}},
        {"administrations": {"agent": "ciltacabtagene-autoleucel", "coding": "atc", "dates": ["2025-03-10"]}},
        {"statement": {"agent": "idecabtagene-vicleucel", "coding": "text", "text": "Abecma", "date": "2025-03-10"}},
        {"statement": {"agent": "talquetamab", "asserted": "2026-05-02"}},
        {"free-light-chains": {"unit": "mg/dL", "series": [["2026-08-03", 41.2, 0.9]]}},
        {"fish-report": {"date": "2026-01-05", "not_detected": ["t(11;14)"]}},
        {"fish-observation": {"date": "2026-01-05", "code": ["local-lab", "FISH-CCND1", "CCND1/IGH FISH"],
                              "value": "Not detected"}},
    ]}
    prefetch = build_patient("t01-test", data)["t01-test.json"]["prefetch"]
    for key, bundle in prefetch.items():
        if key != "patient":
            Bundle.model_validate(bundle)


# ------------------------------------------------------------------------ drift check
def test_drift_names_changed_missing_and_extra_fixtures(tmp_path: Path) -> None:
    fixtures = {"a.json": render({"a": 1}), "b.json": render({"b": 1})}
    (tmp_path / "a.json").write_text(fixtures["a.json"])
    (tmp_path / "c.json").write_text("{}\n")
    assert drift(tmp_path, fixtures) == ["b.json", "c.json"]
    (tmp_path / "a.json").write_text(fixtures["a.json"].replace("1", "2"))
    assert "a.json" in drift(tmp_path, fixtures)


def test_every_patient_file_builds_and_names_its_fixtures() -> None:
    names = render_all()
    assert names and all(n.startswith("p") and n.endswith(".json") for n in names)


def test_the_documented_example_patient_builds() -> None:
    """The example in tests/vignettes/README.md is a working patient file."""
    readme = (Path(__file__).resolve().parent / "vignettes" / "README.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", readme, re.S)
    assert example is not None
    requests = build_patient("p50-example", yaml.load(example.group(1), Loader=DataLoader))  # noqa: S506
    assert sorted(requests) == ["p50-example.json", "p50-example.o1-drd.order-select.json"]
    mrs = requests["p50-example.json"]["prefetch"]["medicationRequests"]["entry"]
    assert len(mrs) == 30 and mrs[-1]["resource"]["statusReason"]["coding"][0]["code"] == "266721009"
