"""Conditions, progression evidence, M-protein, ECOG, transplants and the patient → PatientRecord."""

from __future__ import annotations

from datetime import date

import pytest
from record_helpers import ICD10CM, LOINC, SNOMED, cc, knowledge

from cds_service.record.normalise import build_record

AS_OF = date(2026, 11, 1)


def record(*resources):
    return build_record(list(resources), AS_OF, knowledge())


def cond(code, **extra):
    return {"resourceType": "Condition", "id": extra.pop("id", "c1"), "code": code, **extra}


def status(code):
    return {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": code}]}


# ------------------------------------------------------------------------------ diagnosis


@pytest.mark.parametrize(
    ("code", "kind"),
    [(cc("109989006", SNOMED, "Multiple myeloma (disorder)"), "multiple-myeloma"),
     (cc("285421005", SNOMED), "multiple-myeloma"),
     (cc("C90.00", ICD10CM), "multiple-myeloma"), (cc("C9001", ICD10CM), "multiple-myeloma"),
     (cc("C90.0", "http://hl7.org/fhir/sid/icd-10"), "multiple-myeloma"),
     (cc("C90.02", None), "multiple-myeloma"),  # no system, unmistakable ICD shape
     (cc(text="Multiple myeloma, IgG kappa"), "multiple-myeloma"), (cc(text="Plasma cell myeloma"), "multiple-myeloma"),
     (cc(text="Myelomatosis"), "multiple-myeloma"), (cc(text="Kahler's disease"), "multiple-myeloma"),
     (cc("L123", "http://hospital.example/problems", "MM - multiple myeloma"), "multiple-myeloma"),
     (cc("95210003", SNOMED), "plasma-cell-leukemia"), (cc("C90.10", ICD10CM), "plasma-cell-leukemia"),
     (cc(text="Plasma cell leukaemia"), "plasma-cell-leukemia"),
     (cc("C90.20", ICD10CM), "extramedullary"), (cc(text="Extramedullary plasmacytoma of the liver"), "extramedullary"),
     (cc("413587002", SNOMED), "smoldering"), (cc(text="Smoldering multiple myeloma"), "smoldering"),
     (cc("277577000", SNOMED), "mgus"), (cc("D47.2", ICD10CM), "mgus"), (cc(text="MGUS"), "mgus"),
     (cc(text="Peripheral neuropathy due to bortezomib"), "neuropathy"), (cc(text="Frailty"), "frailty")],
)
def test_condition_kinds(code, kind):
    rec = record(cond(code))
    assert [c.kind for c in rec.conditions] == [kind]
    assert rec.has_myeloma is (kind in ("multiple-myeloma", "plasma-cell-leukemia", "extramedullary"))


@pytest.mark.parametrize("code", [cc("C90.30", ICD10CM), cc(text="Family history of multiple myeloma"),
                                  cc(text="Suspected multiple myeloma"), cc(text="Solitary myeloma of rib"),
                                  cc(text="Essential hypertension"), cc("38341003", SNOMED),
                                  cc("109989006", "http://hospital.example/local")])
def test_not_myeloma(code):
    assert not record(cond(code)).has_myeloma


def test_refuted_and_entered_in_error_are_skipped_and_history_still_counts():
    ver = {"coding": [{"code": "refuted"}]}
    assert record(cond(cc("109989006", SNOMED), verificationStatus={"coding": [{"code": "differential"}]})).conditions == []
    rec = record(cond(cc("109989006", SNOMED), verificationStatus=ver),
                 cond(cc("C90.00", ICD10CM), id="c2", verificationStatus={"coding": [{"code": "entered-in-error"}]}))
    assert rec.conditions == []
    rec = record(cond(cc(text="History of multiple myeloma"), clinicalStatus=status("resolved")))
    assert rec.has_myeloma and rec.conditions[0].active is False


def test_relapse_and_remission_flags_and_progression_from_condition():
    rec = record(
        cond(cc("C90.02", ICD10CM, "Multiple myeloma in relapse"), id="r", onsetDateTime="2024-06-03"),
        cond(cc("C90.01", ICD10CM), id="m", onsetDateTime="2023-01-01"),
        cond(cc("109989006", SNOMED), id="s", clinicalStatus=status("relapse"), recordedDate="2025-02-10"),
        cond(cc("C90.00", ICD10CM), id="a", onsetDateTime="2020-01-01", clinicalStatus=status("active")),
    )
    by = {c.source: c for c in rec.conditions}
    assert by["Condition/r"].relapse and not by["Condition/r"].remission
    assert by["Condition/m"].remission and not by["Condition/m"].relapse
    assert by["Condition/s"].relapse and by["Condition/a"].active
    assert sorted((p.source, p.date, p.kind) for p in rec.progressions) == [
        ("Condition/r", date(2024, 6, 3), "condition-relapse"), ("Condition/s", date(2025, 2, 10), "condition-relapse")]


def test_dstu2_condition_status_string():
    rec = record(cond(cc("C90.00", ICD10CM), clinicalStatus="remission", dateRecorded="2019-05-01"))
    assert rec.conditions[0].remission and not rec.conditions[0].active
    assert rec.conditions[0].onset == date(2019, 5, 1)


# ------------------------------------------------------------------------------ progression


def obs(code, **extra):
    return {"resourceType": "Observation", "id": extra.pop("id", "o1"), "status": "final", "code": code,
            "effectiveDateTime": extra.pop("when", "2024-03-05"), **extra}


def test_mcode_disease_status_worsened():
    rec = record(obs(cc("97509-4", LOINC), valueCodeableConcept=cc("271299001", SNOMED, "Patient's condition worsened")),
                 obs(cc("97509-4", LOINC), id="o2", valueCodeableConcept=cc("268910001", SNOMED)),
                 obs(cc("97509-4", LOINC), id="o3", valueCodeableConcept=cc(text="Disease progression")),
                 obs(cc("97509-4", LOINC), id="o4", valueCodeableConcept=cc(text="No progression")),
                 obs(cc("97509-4", LOINC), id="o5", status="entered-in-error",
                     valueCodeableConcept=cc("271299001", SNOMED)))
    assert sorted(p.source for p in rec.progressions) == ["Observation/o1", "Observation/o3"]
    assert all(p.kind == "disease-status" and p.date == date(2024, 3, 5) for p in rec.progressions)


@pytest.mark.parametrize(("code", "value", "pd"), [
    (cc(text="IMWG response assessment"), {"valueCodeableConcept": cc(text="PD")}, True),
    (cc("X", "http://lab.example", "Response assessment"), {"valueString": "Progressive disease"}, True),
    (cc(text="Disease response"), {"valueString": "VGPR"}, False),
    (cc(text="Best response"), {"valueCodeableConcept": cc(text="Partial response")}, False)])
def test_imwg_response_observation(code, value, pd):
    rec = record(obs(code, **value))
    assert [p.kind for p in rec.progressions] == (["response-pd"] if pd else [])


# ------------------------------------------------------------------------------ labs


@pytest.mark.parametrize(("q", "g_dl"), [
    ({"value": 1.2, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"}, 1.2),
    ({"value": 12, "unit": "g/L"}, 1.2), ({"value": 1200, "unit": "mg/dL"}, 1.2), ({"value": 0.8}, 0.8)])
def test_m_protein_units(q, g_dl):
    rec = record(obs(cc("33358-3", LOINC), valueQuantity=q))
    assert len(rec.m_protein) == 1
    v = rec.m_protein[0]
    assert v.value == pytest.approx(g_dl) and v.unit == "g/dL" and v.date == date(2024, 3, 5)


def test_m_protein_unknown_unit_skipped_with_note_and_text_code():
    rec = record(obs(cc("33358-3", LOINC), valueQuantity={"value": 3, "unit": "mmol/L"}),
                 obs(cc(text="M-spike"), id="o2", valueQuantity={"value": 2.5, "unit": "g/dl"}),
                 obs(cc(text="Urine M-protein 24h"), id="o3", valueQuantity={"value": 300, "unit": "mg/24h"}),
                 obs(cc("51435-6", LOINC), id="o4", valueQuantity={"value": 1.0, "unit": "g/dL"}))
    assert [(m.source, m.value) for m in rec.m_protein] == [("Observation/o2", 2.5)]
    assert any("M-protein" in n for n in rec.notes)


@pytest.mark.parametrize("value", [{"valueInteger": 2}, {"valueQuantity": {"value": 2}},
                                   {"valueCodeableConcept": cc(text="ECOG 2")},
                                   {"valueCodeableConcept": {"coding": [{"code": "2", "display": "Ambulatory"}]}},
                                   {"valueString": "2 - ambulatory, capable of self-care"}])
def test_ecog(value):
    rec = record(obs(cc("89247-1", LOINC), **value))
    assert [(e.value, e.date) for e in rec.ecog] == [(2.0, date(2024, 3, 5))]


def test_ecog_by_text_and_not_karnofsky():
    rec = record(obs(cc(text="ECOG performance status"), valueInteger=1),
                 obs(cc(text="Karnofsky performance status"), id="k", valueInteger=70))
    assert [e.value for e in rec.ecog] == [1.0]


# ------------------------------------------------------------------------------ transplant


def proc(code, **extra):
    return {"resourceType": "Procedure", "id": extra.pop("id", "p1"), "code": code, **extra}


@pytest.mark.parametrize(("code", "kind"), [
    (cc("58776007", SNOMED), "autologous"), (cc("234336002", SNOMED), "unknown"),
    (cc("234336002", SNOMED, "Hemopoietic stem cell transplant", "Autologous HSCT"), "autologous"),
    (cc("58390007", SNOMED), "allogeneic"), (cc("38241", "http://www.ama-assn.org/go/cpt"), "autologous"),
    (cc("38240", "http://www.ama-assn.org/go/cpt"), "allogeneic"),
    (cc(text="Autologous stem cell transplant (ASCT)"), "autologous"), (cc(text="ASCT"), "autologous"),
    (cc(text="auto-SCT with melphalan 200"), "autologous"), (cc(text="Autologous PBSCT"), "autologous"),
    (cc(text="Allogeneic HSCT"), "allogeneic")])
def test_transplant_procedures(code, kind):
    rec = record(proc(code, status="completed", performedDateTime="2021-09-14T08:00:00Z"))
    assert [(t.kind, t.date) for t in rec.transplants] == [(kind, date(2021, 9, 14))]


def test_transplant_period_missing_status_and_skips():
    rec = record(
        proc(cc("58776007", SNOMED), id="a", performedPeriod={"start": "2020-02-01", "end": "2020-02-20"}),
        proc(cc("58776007", SNOMED), id="b", status="not-done", performedDateTime="2020-01-01"),
        proc(cc("58776007", SNOMED), id="c", status="entered-in-error", performedDateTime="2020-01-01"),
        proc(cc(text="Stem cell collection for autologous transplant"), id="d", performedDateTime="2019-12-01"),
        proc(cc(text="Hemogram with Hct"), id="e", performedDateTime="2019-12-01"),
        proc(cc(text="Kidney transplant"), id="f", performedDateTime="2019-12-01"),
    )
    assert [(t.source, t.date) for t in rec.transplants] == [("Procedure/a", date(2020, 2, 1))]


def test_transplant_history_without_date():
    rec = record(cond(cc("Z94.84", ICD10CM)),
                 proc(cc("108631000119101", SNOMED), id="h", performedDateTime="2024-01-01"))
    assert sorted((t.source, t.kind, t.date) for t in rec.transplants) == [
        ("Condition/c1", "unknown", None), ("Procedure/h", "autologous", None)]


def test_patient():
    rec = record({"resourceType": "Patient", "id": "p", "birthDate": "1950-07", "gender": "female"})
    assert (rec.patient_id, rec.birth_date, rec.gender) == ("p", date(1950, 7, 1), "female")
    assert rec.resource_count == 1


@pytest.mark.parametrize(("text", "score"), [
    ("Ambulatory and capable of all selfcare but unable to carry out any work activities", 2.0),
    ("Fully active, able to carry on all pre-disease performance without restriction", 0.0),
    ("Completely disabled", 4.0)])
def test_ecog_answer_wording(text, score):
    rec = record(obs(cc("89247-1", LOINC), valueCodeableConcept={"coding": [{"system": LOINC, "display": text}]}))
    assert [e.value for e in rec.ecog] == [score]


def test_dstu2_procedure_not_performed():
    rec = record(proc(cc("58776007", SNOMED), notPerformed=True, performedDateTime="2020-01-01"))
    assert rec.transplants == []


def test_oid_code_systems():
    rec = record(cond({"coding": [{"system": "urn:oid:2.16.840.1.113883.6.90", "code": "C90.02"}]}, onsetDateTime="2025-01-01"),
                 obs({"coding": [{"system": "urn:oid:2.16.840.1.113883.6.1", "code": "33358-3"}]}, valueQuantity={"value": 1.0, "unit": "g/dL"}))
    assert rec.has_myeloma and rec.conditions[0].relapse and len(rec.m_protein) == 1


def test_m_protein_as_component_of_an_spep_panel():
    rec = record(obs(cc(text="Serum protein electrophoresis panel"), component=[
        {"code": cc("2885-2", LOINC, "Protein [Mass/volume] in Serum or Plasma"), "valueQuantity": {"value": 7.1, "unit": "g/dL"}},
        {"code": cc("33358-3", LOINC), "valueQuantity": {"value": 21, "unit": "g/L"}}]))
    assert [(m.value, m.source) for m in rec.m_protein] == [(pytest.approx(2.1), "Observation/o1")]
